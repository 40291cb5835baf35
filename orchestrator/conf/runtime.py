"""What the console and its agents both read: the data folder, the broker, Docker, the pulls' limits, logging.

The console's settings (``orchestrator.settings``) and the agent's (:mod:`.agent`) start from these. Nothing
here is a secret of the console: an agent runs on a gateway in the field and gets only this and its token.
"""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from .env import env, env_bool, env_int, env_list

BASE_DIR = Path(__file__).resolve().parent.parent.parent

DEBUG = env_bool("DJANGO_DEBUG", True)
DATA_DIR = Path(env("DATA_DIR", str(BASE_DIR / "var")) or BASE_DIR / "var")
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
TIME_ZONE = "UTC"
USE_TZ = True

# --- Celery -----------------------------------------------------------------
# "localhost" only keeps kombu from warning that no host was given; the folders below are what count.
CELERY_BROKER_URL = env("CELERY_BROKER_URL") or "filesystem://localhost//"
BROKER_REDIS_TRANSPORT_OPTIONS = {
    # Redis hands an unacknowledged message out again after this long. It must exceed the longest
    # pull; a worker that died is found sooner by the sweeper (PULL_STALE_AFTER_SECONDS), and the
    # worker's claim refuses the late copy.
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 6 * 3600),
    # Publishing connects once, without kombu's retry loop: a Save while Redis is down returns at
    # once and the job waits as queued (the worker's own reconnects do not use this option).
    "max_retries": 0,
}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = DATA_DIR / "broker"
    for _sub in ("queue", "processed"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        "control_folder": str(_broker_dir / "control"),
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = BROKER_REDIS_TRANSPORT_OPTIONS
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Progress lives on the PullJob row; nothing needs a result backend.
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Publishing must not hang a web request when the broker is down: the job stays
# queued and the sweeper dispatches it later.
CELERY_TASK_PUBLISH_RETRY = False
# Pulls whose worker died and queued pulls the broker never got are found by the
# console's sweeper on each heartbeat of their gateway (orchestrator.pulls.sweeper),
# not by beat: a beat task cannot travel while the broker is down.
# Every task is sent to its gateway's queue (gw.<name>, gw.<name>.control); none should land here.
CELERY_TASK_DEFAULT_QUEUE = "console-unrouted"

# --- Docker and pulls ---------------------------------------------------------
# The Docker host is a setting of the process that runs the worker, so one worker
# per gateway can each point at their own daemon later.
DOCKER_HOST = env("DOCKER_HOST", "unix:///var/run/docker.sock")
# An agent's way to the console: its base URL (the agent API is under /agent/v1/).
CONSOLE_URL = env("CONSOLE_URL", "")
# Pulls an agent runs at once (its thread pool): each mostly waits on the daemon's socket.
AGENT_CONCURRENCY = env_int("AGENT_CONCURRENCY", 8)
# Each gateway's agent beats this often; a gateway silent for two beats (and 5 s) is offline.
GATEWAY_HEARTBEAT_SECONDS = env_int("GATEWAY_HEARTBEAT_SECONDS", 15)
# Saving the form asks the registry (through the daemon) for the image first.
CHECK_IMAGE_ON_SAVE = env_bool("CHECK_IMAGE_ON_SAVE", True)
# How long a page waits for a gateway's agent to answer a check, a container action or an output request
# before it says the request goes on (the answer shows when it comes).
CONTROL_WAIT_SECONDS = env_int("CONTROL_WAIT_SECONDS", 5)
# A request the agent gets later than this is not carried out: a Stop clicked an hour ago must not happen now.
CONTROL_EXPIRE_SECONDS = env_int("CONTROL_EXPIRE_SECONDS", 120)
# Control threads of an agent, apart from its pulls: a check or a Stop never waits for a pull to end.
AGENT_CONTROL_THREADS = env_int("AGENT_CONTROL_THREADS", 4)
# Host access (orchestrator/security/host_access.py): even an administrator mounts only host paths and
# passes only devices that match these globs ('*' matches any characters, '/' included).
CONSOLE_ALLOWED_HOST_PATHS = env_list("CONSOLE_ALLOWED_HOST_PATHS", "/srv/*,/opt/*,/data/*,/mnt/*,/media/*,/home/*")
CONSOLE_ALLOWED_DEVICES = env_list(
    "CONSOLE_ALLOWED_DEVICES",
    "/dev/ttyUSB*,/dev/ttyACM*,/dev/ttyS*,/dev/ttyAMA*,/dev/serial/*,/dev/gpiomem,/dev/gpiochip*,/dev/i2c-*,"
    "/dev/spidev*,/dev/video*,/dev/snd/*,/dev/bus/usb/*,/dev/dri/*,/dev/nvidia*",
)
# Never mounted, whatever the allowlist says (with /, /etc, /proc, /sys, /boot, /dev, /run and /var/run).
CONSOLE_DOCKER_DATA_ROOT = env("CONSOLE_DOCKER_DATA_ROOT", "/var/lib/docker")
# Minimum seconds between two progress writes to a job row.
PULL_PROGRESS_WRITE_INTERVAL = float(env("PULL_PROGRESS_WRITE_INTERVAL", "0.25") or 0.25)
# A running job whose row has not been touched for this long has lost its worker.
PULL_STALE_AFTER_SECONDS = env_int("PULL_STALE_AFTER_SECONDS", 120)

_log_level = env("LOG_LEVEL") or "INFO"
LOG_LEVEL = _log_level.strip().upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {_log_level!r}")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # These keep their level whatever LOG_LEVEL says, because at DEBUG they write secrets
        # into the log: botocore the bodies of AWS responses (GetAuthorizationToken's, that is
        # the ECR password) and signed requests, boto3 and s3transfer through botocore, urllib3
        # and docker the request headers (X-Registry-Auth included).
        "botocore": {"level": "WARNING"},
        "boto3": {"level": "WARNING"},
        "s3transfer": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
        "docker": {"level": "INFO"},
        "axes": {"level": "WARNING"},
    },
}

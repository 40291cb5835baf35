"""Settings for the container orchestrator console.

Everything comes from the environment, with defaults that make a fresh checkout
run on embedded components: SQLite in ``DATA_DIR`` and kombu's filesystem broker
when ``CELERY_BROKER_URL`` is unset. Production (``DJANGO_DEBUG=0``) refuses to
start without a real secret key and an encryption key.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from orchestrator.security.client_ip import client_address_from

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str | None = None) -> str | None:
    """Read NAME, or the contents of the file named by NAME_FILE (Docker secrets)."""
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        try:
            return Path(file_path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={file_path} cannot be read: {exc}") from exc
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = env(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {value!r}")


def env_int(name: str, default: int) -> int:
    value = env(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in (env(name, default) or "").split(",") if item.strip()]


def _development_secret(path: Path, make) -> str:
    """Generate a secret once and keep it under DATA_DIR, so restarts keep sessions and data."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(make())
    return path.read_text().strip()


DEBUG = env_bool("DJANGO_DEBUG", True)
DATA_DIR = Path(env("DATA_DIR", str(BASE_DIR / "var")) or BASE_DIR / "var")
DATA_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = env("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("You must set DJANGO_SECRET_KEY (or DJANGO_SECRET_KEY_FILE) in production.")
    SECRET_KEY = _development_secret(DATA_DIR / "secret_key", lambda: secrets.token_urlsafe(50))

# Registry passwords and AWS keys are encrypted with these Fernet keys. Several
# keys, comma separated, allow rotation: the first encrypts, all decrypt.
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEY")
if not FIELD_ENCRYPTION_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured(
            "You must set FIELD_ENCRYPTION_KEY (or FIELD_ENCRYPTION_KEY_FILE) in production; "
            'make one with: python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
        )
    FIELD_ENCRYPTION_KEYS = [
        _development_secret(DATA_DIR / "field_encryption_key", lambda: Fernet.generate_key().decode())
    ]

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if not DEBUG else "*")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_htmx",
    "axes",
    "registries",
    "orchestrator",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The audit log's receivers learn who and from where through it (orchestrator/audit).
    "orchestrator.audit.middleware.AuditRequestMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "orchestrator.security.middleware.ContentSecurityPolicyMiddleware",
    # Last, as django-axes asks: it turns lockouts into a response.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "orchestrator.urls"
WSGI_APPLICATION = "orchestrator.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# The web server and the worker share this database. SQLite copes with that in
# WAL mode with a busy timeout; IMMEDIATE transactions avoid "database is
# locked" on lock upgrades. DATABASE_ENGINE=postgresql switches to Postgres.
if env("DATABASE_ENGINE", "sqlite") == "postgresql":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": env("DATABASE_NAME", "orchestrator"),
            "USER": env("DATABASE_USER", "orchestrator"),
            "PASSWORD": env("DATABASE_PASSWORD", ""),
            "HOST": env("DATABASE_HOST", "localhost"),
            "PORT": env("DATABASE_PORT", "5432"),
            "CONN_MAX_AGE": 60,
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env("DATABASE_PATH", str(DATA_DIR / "db.sqlite3")),
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            # A file, not memory: the test worker process shares the test database.
            "TEST": {"NAME": env("DATABASE_TEST_PATH", str(DATA_DIR / "test-db.sqlite3"))},
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "instance-list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# The image collects its static files at build time into a STATIC_ROOT of its own: DATA_DIR is a
# volume, and a volume hides what the build put at its mount point.
STATIC_ROOT = Path(env("STATIC_ROOT") or DATA_DIR / "staticfiles")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every request otherwise
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# Login throttling, two counters: five wrong passwords for one user name (from any addresses) lock
# that name, and five from one address (for any names) lock that address, each for 15 minutes.
# A pair [["username", "ip_address"]] would let a guesser who changes address go on for ever.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = 0.25
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# A success does not clear failures: axes would clear every failure from that address, so anyone with an
# account could guess another's password for ever (four guesses, one login of their own, again). Failures
# go after the cool-off instead.
AXES_RESET_ON_SUCCESS = False
AXES_ENABLED = env_bool("AXES_ENABLED", True)


def _client_ip_header(name: str) -> str | None:
    """The request.META key of the header a proxy writes the client's address into, or None."""
    value = (env(name) or "").strip()
    if not value:
        return None
    # Underscores are refused because gunicorn drops such headers and Django folds - and _ together.
    if not re.fullmatch(r"[A-Za-z0-9]+(-[A-Za-z0-9]+)*", value):
        raise ImproperlyConfigured(f"{name} must be an HTTP header name such as X-Forwarded-For, not {value!r}")
    if value.lower() == "forwarded":
        raise ImproperlyConfigured(
            f"{name}=Forwarded (RFC 7239) is not supported; have the proxy set X-Forwarded-For or X-Real-IP"
        )
    return "HTTP_" + value.upper().replace("-", "_")


# Behind a reverse proxy every login comes from the proxy's address, so one address counter would
# lock everybody out at once: name the header the proxy writes the client's address into.
_CLIENT_IP_META = _client_ip_header("CLIENT_IP_HEADER")
if env("CLIENT_IP_PROXY_COUNT") and not _CLIENT_IP_META:
    raise ImproperlyConfigured("CLIENT_IP_PROXY_COUNT needs CLIENT_IP_HEADER, the header the proxies write into")
CLIENT_IP_PROXY_COUNT = env_int("CLIENT_IP_PROXY_COUNT", 1)
if CLIENT_IP_PROXY_COUNT < 1:
    raise ImproperlyConfigured(
        f"CLIENT_IP_PROXY_COUNT is the number of proxies in front of the console (1 or more), "
        f"not {CLIENT_IP_PROXY_COUNT}"
    )
AXES_CLIENT_IP_CALLABLE = client_address_from(_CLIENT_IP_META, CLIENT_IP_PROXY_COUNT) if _CLIENT_IP_META else None

# The audit log (orchestrator/audit) keeps this many days; 0 keeps everything. The client address
# in it comes from axes' helper, so the AXES_ settings above decide it for both.
AUDIT_KEEP_DAYS = env_int("AUDIT_KEEP_DAYS", 365)

# Security headers; the production values are on whenever DEBUG is off.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
# Behind a proxy that terminates TLS every request arrives as plain HTTP: without this the HTTPS
# redirect would loop. Only for a proxy that sets X-Forwarded-Proto itself and that clients
# cannot go around, since the header is believed as it comes.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("DJANGO_BEHIND_TLS_PROXY", False) else None
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'; object-src 'none'"
)

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
# Pulls whose worker died and queued pulls the broker never got are found by a
# sweeper thread in every agent (orchestrator.pulls.sweeper, PULL_SWEEP_SECONDS), not
# by beat: a beat task cannot travel while the broker is down.
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
# How often each worker's sweeper looks for such jobs and for queued jobs to (re)send; 0 turns it off.
PULL_SWEEP_SECONDS = float(env_int("PULL_SWEEP_SECONDS", 15))

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

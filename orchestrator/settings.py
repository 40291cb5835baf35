"""Settings for the container orchestrator console.

Everything comes from the environment, with defaults that make a fresh checkout
run on embedded components: SQLite in ``DATA_DIR`` and kombu's filesystem broker
when ``CELERY_BROKER_URL`` is unset. Production (``DJANGO_DEBUG=0``) refuses to
start without a real secret key and an encryption key.

What an agent also reads (the broker, Docker, the pulls' limits, logging) is in
``orchestrator.conf.runtime``; the agent's own settings are ``orchestrator.conf.agent``,
which hold neither this database nor these keys.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from orchestrator.conf.env import development_secret, env, env_bool, env_int, env_list
from orchestrator.conf.runtime import *  # noqa: F403 - the settings the agents share
from orchestrator.conf.runtime import BASE_DIR, DATA_DIR, DEBUG
from orchestrator.security.client_ip import client_address_from

# The agent's settings say "agent" (orchestrator/conf/agent.py).
ORCHESTRATOR_ROLE = "console"

SECRET_KEY = env("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("You must set DJANGO_SECRET_KEY (or DJANGO_SECRET_KEY_FILE) in production.")
    SECRET_KEY = development_secret(DATA_DIR / "secret_key", lambda: secrets.token_urlsafe(50))

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
        development_secret(DATA_DIR / "field_encryption_key", lambda: Fernet.generate_key().decode())
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
            # Each web thread keeps its connection for a minute, as on PostgreSQL: opening one (and its
            # PRAGMAs) on every agent API request cost a fifth of the web's capacity (bench/agent_api.py).
            "CONN_MAX_AGE": 60,
        }
    }

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
USE_I18N = True

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

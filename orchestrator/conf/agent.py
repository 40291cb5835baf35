"""The agent's settings (``manage.py agent`` always runs with these; see manage.py).

An agent runs on a gateway in the field, which may be stolen or opened some day. So it gets no database (the
dummy backend: any query raises ImproperlyConfigured), no encryption key (decrypting a field raises), and no
secret key of the console (a random one per process: the agent signs nothing). What it knows comes from the
console's agent API with its gateway's token (``orchestrator.agent.client``): the four variables it needs are
``GATEWAY_TOKEN`` (or ``GATEWAY_TOKEN_FILE``), ``CONSOLE_URL``, ``CELERY_BROKER_URL`` and ``DOCKER_HOST``.
"""

from __future__ import annotations

import secrets

from .runtime import *  # noqa: F403 - the broker, Docker, the pulls' limits and logging, as the console has them

ORCHESTRATOR_ROLE = "agent"
# The models are imported (their choices name states and codes) but never queried.
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "registries", "orchestrator"]
DATABASES = {"default": {"ENGINE": "django.db.backends.dummy"}}
SECRET_KEY = secrets.token_urlsafe(50)
FIELD_ENCRYPTION_KEYS: list[str] = []
# The agent serves no pages: DEBUG would only keep a memory of queries it does not make.
DEBUG = False
# No remote control (`celery inspect`, `control shutdown`): over a shared broker, any agent could send it to
# every other; agents need neither that nor mingle and gossip (manage.py agent turns those off).
CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
# The agent serves no pages; these keep Django's checks quiet.
ALLOWED_HOSTS: list[str] = []
ROOT_URLCONF = "orchestrator.agent.no_urls"

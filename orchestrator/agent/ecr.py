"""ECR passwords made from the gateway's own AWS identity ("the gateway's AWS credentials" instances).

boto3's default chain finds that identity on the gateway (its environment, ``~/.aws``, an instance role), so
it never leaves the gateway, and the console never sees it. Passwords made with it are kept in this process's
memory, per registry host, and replaced at half their life (:func:`registries.aws.refresh_time`), as the
console's cache does for the ones it makes from stored keys. An agent restart fetches a new one.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from django.views.decorators.debug import sensitive_variables

from registries.aws import EcrPassword, fetch_ecr_password, refresh_time
from registries.credentials import auth_config

log = logging.getLogger(__name__)

_lock = threading.Lock()
# host -> (the password, when to replace it)
_cache: dict[str, tuple[EcrPassword, datetime]] = {}


@sensitive_variables("fresh", "cached")
def chain_password(host: str) -> str:
    """A valid ECR password for ``host`` from the gateway's AWS identity. Raises PullError."""
    key = host.lower()
    now = datetime.now(UTC)
    with _lock:
        cached = _cache.get(key)
        if cached is not None and cached[1] > now and cached[0].expires_at > now:
            return cached[0].password
    fresh = fetch_ecr_password(host, use_chain=True, now=now)
    # The count of these lines is how the tests see the cache work; never log the password itself.
    log.info("ecr: fetched a new authorization token for %s (valid until %s)", host, fresh.expires_at.isoformat())
    with _lock:
        _cache[key] = (fresh, refresh_time(fresh.fetched_at, fresh.expires_at))
    return fresh.password


@sensitive_variables("token")
def chain_login(host: str, registry_url: str) -> tuple[dict, tuple[str, ...]]:
    """(auth_config for the Docker SDK, the secrets to scrub) for a pull from ``host`` with the chain."""
    token = chain_password(host)
    return auth_config(registry_url or host, "AWS", token), (token,)

"""Who is asking: ``Authorization: Bearer <gateway token>``, and nothing else (no session, no cookie).

The token names its gateway (only its sha256 is stored, see :mod:`orchestrator.gateways.tokens`); the request
gets ``request.gateway`` and every view scopes its reads and writes to it. A malformed, unknown or rotated
token gets the same answer, so a caller cannot tell which it was, and no answer or log line repeats it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import wraps

from orchestrator.gateways.actions import find_by_token
from orchestrator.gateways.tokens import PREFIX
from orchestrator.models import Gateway
from registries.views import json_error

log = logging.getLogger(__name__)

# make_token() gives the prefix and 43 url-safe characters; a little slack either way, nothing else.
TOKEN_SHAPE = re.compile(re.escape(PREFIX) + r"[A-Za-z0-9_-]{20,128}")
REFUSED = "The console does not accept this token."


def gateway_of(token: str) -> Gateway | None:
    """The gateway ``token`` names, or None. A token of the wrong shape is not even looked up."""
    if not TOKEN_SHAPE.fullmatch(token):
        return None
    # find_by_token looks the row up by the token's hash and compares it with hmac.compare_digest.
    return find_by_token(token)


def _refuse(message: str, challenge: str):
    response = json_error(401, "unauthorized", message)
    response["WWW-Authenticate"] = challenge
    return response


def gateway_required(view: Callable) -> Callable:
    """Run ``view`` only for a valid gateway token; 401 otherwise."""

    @wraps(view)
    def guarded(request, *args, **kwargs):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            log.info("agent api: %s %s refused: no bearer token", request.method, request.path)
            return _refuse("Send Authorization: Bearer <gateway token>.", 'Bearer realm="agent"')
        gateway = gateway_of(token.strip())
        if gateway is None:
            log.info("agent api: %s %s refused: token not accepted", request.method, request.path)
            return _refuse(REFUSED, 'Bearer realm="agent", error="invalid_token"')
        request.gateway = gateway
        return view(request, *args, **kwargs)

    return guarded

"""Every change to a gateway row: add, rotate its token, remove, and the agent's heartbeat."""

from __future__ import annotations

import hmac

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from orchestrator.models import ContainerInstance, Gateway
from orchestrator.models.gateways import LOCAL

from .tokens import hash_token, make_token


class GatewayError(Exception):
    """A gateway action that cannot be done; the message says why and what to do."""


# Taken by the pages' URLs (/gateways/add/).
RESERVED_NAMES = frozenset({"add"})


def add_gateway(name: str) -> tuple[Gateway, str]:
    """A new gateway and its agent's token (shown once: only its hash is kept)."""
    if name.strip() in RESERVED_NAMES:
        raise GatewayError(f"{name.strip()!r} is taken by the console's pages: choose another name.")
    gateway = Gateway(name=name.strip())
    try:
        gateway.full_clean(exclude=["token_hash", "facts"])
    except ValidationError as error:
        raise GatewayError(" ".join(" ".join(messages) for messages in error.message_dict.values())) from None
    token = make_token()
    gateway.token_hash = hash_token(token)
    gateway.save()
    return gateway, token


def rotate_token(name: str) -> str:
    """A new token for the gateway; the old one stops working at once."""
    token = make_token()
    if not Gateway.objects.filter(name=name).update(token_hash=hash_token(token)):
        raise GatewayError(f"There is no gateway {name!r}.")
    return token


def remove_gateway(name: str) -> None:
    """Remove a gateway without instances (their containers would be left without a console)."""
    with transaction.atomic():
        gateway = Gateway.objects.select_for_update().filter(name=name).first()
        if gateway is None:
            raise GatewayError(f"There is no gateway {name!r}.")
        count = ContainerInstance.objects.filter(gateway=gateway).count()
        if count:
            raise GatewayError(
                f"{name} still has {count} instance{'s' if count != 1 else ''}: move or delete them first."
            )
        gateway.delete()


def find_by_token(token: str) -> Gateway | None:
    """The gateway a token names, or None (unknown, rotated away, or malformed)."""
    wanted = hash_token(token or "")
    gateway = Gateway.objects.filter(token_hash=wanted).first()
    # The lookup is by hash, so timing tells nothing about the token; compare once more all the same.
    if gateway is None or not hmac.compare_digest(gateway.token_hash, wanted):
        return None
    return gateway


def ensure_local() -> Gateway:
    """The gateway ``local`` (``make run``'s, and where instances made without a gateway go)."""
    gateway, _ = Gateway.objects.get_or_create(name=LOCAL)
    return gateway


def beat(name: str, facts: dict) -> bool:
    """The agent's heartbeat with its facts. False if the gateway is gone."""
    return bool(Gateway.objects.filter(name=name).update(last_seen=timezone.now(), facts=facts))

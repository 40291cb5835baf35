"""Control requests as the agent API hands them over: take one (its secrets wiped as it is read), answer it.

The console's side (orchestrator/agentapi/control.py calls these); an agent reaches them only through the API
(:mod:`.remote`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from orchestrator.models import ContainerInstance, ControlRequest


@dataclass
class Taken:
    id: str
    kind: str
    payload: dict
    instance: ContainerInstance | None
    secrets: dict = field(default_factory=dict, repr=False)


def take(request_id: str, gateway: str) -> Taken | None:
    """Claim a pending request of ``gateway``; None when it is another gateway's, gone, taken or too old.

    A request of another gateway stays as it is: this agent consumed a queue that is not its own.
    """
    with transaction.atomic():
        claimed = ControlRequest.objects.filter(
            pk=request_id, gateway__name=gateway, state=ControlRequest.State.PENDING
        ).update(state=ControlRequest.State.TAKEN)
        if not claimed:
            return None
        row = ControlRequest.objects.select_related("instance__gateway").get(pk=request_id)
        ControlRequest.objects.filter(pk=request_id).update(secrets="")
    if timezone.now() - row.created_at > timedelta(seconds=settings.CONTROL_EXPIRE_SECONDS):
        answer(
            request_id,
            {"error": {"code": "expired", "message": "The request was too old when the agent got it."}},
            expired=True,
        )
        return None
    secrets = json.loads(row.secrets) if row.secrets else {}
    return Taken(id=str(row.pk), kind=row.kind, payload=row.payload, instance=row.instance, secrets=secrets)


def answer(request_id: str, data: dict, *, expired: bool = False) -> None:
    state = ControlRequest.State.EXPIRED if expired else ControlRequest.State.DONE
    ControlRequest.objects.filter(pk=request_id).update(
        state=state, answer=data, answered_at=timezone.now(), secrets=""
    )

"""Asking a gateway's agent, from the web: write the request, send its id, wait a few seconds for the answer.

The web opens no Docker client: a check, a Start/Stop/Restart and the
container's output are requests a gateway's agent answers (see
:mod:`orchestrator.control.consumer`). A page waits at most
``CONTROL_WAIT_SECONDS``; then it says the request goes on, and the answer
shows where it belongs when it comes (the check button polls for it, the
container panel shows the new state).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from orchestrator.models import ControlRequest, Gateway
from orchestrator.models.gateways import control_queue

log = logging.getLogger(__name__)

CONTROL_TASK = "orchestrator.control"
# Answered or not, a request row is deleted after this long (its secrets went at once).
KEEP_FOR = timedelta(hours=1)


@dataclass
class Reply:
    """The agent's answer, or why there is none yet (``note``); ``request`` is None when nothing was sent."""

    answer: dict | None = None
    note: str = ""
    request: ControlRequest | None = None

    @property
    def pending(self) -> bool:
        return self.answer is None


@sensitive_variables("secrets")
def ask(
    gateway: Gateway,
    kind: str,
    *,
    instance=None,
    user=None,
    payload: dict | None = None,
    secrets: dict | None = None,
    wait: float | None = None,
) -> Reply:
    """Send a request to ``gateway``'s agent and wait up to ``wait`` seconds (CONTROL_WAIT_SECONDS) for it."""
    if not gateway.online:
        # No wait at all: nobody would answer.
        return Reply(note=f"The gateway {gateway.name} is offline (its agent last reported {gateway.last_seen_ago}).")
    if connection.in_atomic_block:
        # The agent would not see the request before the caller's transaction ends (and SQLite would hold
        # its answer back): ask from outside any transaction.
        return Reply(note="The request could not be sent from inside a transaction.")
    ControlRequest.objects.filter(created_at__lt=timezone.now() - KEEP_FOR).delete()
    request = ControlRequest.objects.create(
        gateway=gateway,
        instance=instance if instance is not None and instance.pk else None,
        kind=kind,
        requested_by=user if user is not None and user.is_authenticated else None,
        payload=payload or {},
        secrets=json.dumps(secrets) if secrets else "",
    )
    try:
        current_app.send_task(CONTROL_TASK, (str(request.pk),), queue=control_queue(gateway.name), retry=False)
    except Exception as exc:  # the broker being down: say so, as for a pull
        log.warning("control request %s not sent: task queue unavailable: %s", request.pk, type(exc).__name__)
        request.delete()
        return Reply(note="The task queue is unavailable, so the gateway's agent could not be asked.")
    return wait_for(request, settings.CONTROL_WAIT_SECONDS if wait is None else wait)


def wait_for(request: ControlRequest, seconds: float) -> Reply:
    """Poll the row until the agent has answered or ``seconds`` have passed."""
    deadline = time.monotonic() + seconds
    pause = 0.02
    while True:
        row = ControlRequest.objects.filter(pk=request.pk).values("state", "answer").first()
        if row is None:
            return Reply(note="The request is gone.", request=request)
        if row["state"] in (ControlRequest.State.DONE, ControlRequest.State.EXPIRED):
            request.state, request.answer = row["state"], row["answer"]
            return Reply(answer=row["answer"] or {}, request=request)
        if time.monotonic() >= deadline:
            return Reply(
                note=f"The agent of gateway {request.gateway.name} has not answered within {seconds:g} s; "
                "the request goes on.",
                request=request,
            )
        time.sleep(pause)
        pause = min(pause * 1.5, 0.25)

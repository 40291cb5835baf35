"""Control requests (a check, Start/Stop/Restart, the container's output): take one, then answer it.

:mod:`orchestrator.control.store` does both, as for today's agent; these views add the gateway's scope and
tell the outcomes apart (404 unknown or another gateway's, 409 taken already, 410 too old), which ``take``
folds into one None. The request's ``secrets`` (a typed password or AWS secret of a check) leave the row as
they are handed over here, once.
"""

from __future__ import annotations

import logging

from django.http import JsonResponse
from django.views.decorators.debug import sensitive_variables

from orchestrator.control import store
from orchestrator.models import ControlRequest

from .documents import instance_document
from .http import ApiError, endpoint, not_found, read_json
from .schema import free_json, record

log = logging.getLogger(__name__)

State = ControlRequest.State
# A log excerpt is at most 64 KiB of text (containers/status.py); its JSON escaping may double that.
MAX_ANSWER = 256 * 1024
_ANSWER = record({"answer": free_json(max_bytes=MAX_ANSWER)}, required=("answer",))


def _gone() -> ApiError:
    return ApiError(410, "expired", "The request was too old when the agent got it; it is marked expired.")


def _state(request, request_id) -> str:
    state = ControlRequest.objects.filter(pk=request_id, gateway=request.gateway).values_list("state", flat=True)
    state = state.first()
    if state is None:
        raise not_found("control request")
    return state


@endpoint("POST")
@sensitive_variables("taken")
def take(request, request_id):
    state = _state(request, request_id)
    if state == State.EXPIRED:
        raise _gone()
    if state != State.PENDING:
        raise ApiError(409, "taken", f"The request was taken already (it is {state}).")
    taken = store.take(str(request_id), request.gateway.name)
    if taken is None:
        # Another take won the race, or it was too old: take() has marked it expired then.
        if _state(request, request_id) == State.EXPIRED:
            log.info("agent api: control request %s of gateway %s expired", request_id, request.gateway.name)
            raise _gone()
        raise ApiError(409, "taken", "The request was taken already.")
    instance = taken.instance
    # An instance moved to another gateway since is not this agent's to act on: it answers "gone".
    mine = instance is not None and instance.gateway_id == request.gateway.pk
    log.info("agent api: control request %s (%s) taken by gateway %s", request_id, taken.kind, request.gateway.name)
    return JsonResponse(
        {
            "id": taken.id,
            "kind": taken.kind,
            "payload": taken.payload,
            "secrets": {name: str(value) for name, value in taken.secrets.items()},
            "instance": instance_document(instance) if mine else None,
        }
    )


@endpoint("POST")
def answer(request, request_id):
    data = _ANSWER(read_json(request), "body")["answer"]
    state = _state(request, request_id)
    if state == State.EXPIRED:
        raise _gone()
    if state != State.TAKEN:
        # Pending: take it first; done: answered already (the page has shown that answer).
        raise ApiError(409, "not_taken", f"The request is {state}, not taken: it cannot be answered.")
    store.answer(str(request_id), data)
    log.info("agent api: control request %s answered by gateway %s", request_id, request.gateway.name)
    return JsonResponse({"ok": True})

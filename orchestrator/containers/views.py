"""The instance page's container panel (polled by htmx), its output, and its Start / Stop / Restart buttons.

The panel shows what the gateway's agent last reported; the output and the
buttons are requests to that agent (:mod:`orchestrator.control.ask`), each
waited on for a few seconds at most.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from orchestrator.audit.record import record
from orchestrator.control.ask import ask, wait_for
from orchestrator.models import ContainerInstance, ControlRequest
from orchestrator.security.roles import PULL_INSTANCE, VIEW_INSTANCE, requires

from .panel import panel
from .status import ACTIONS, LOG_LINES, disabled_message

# The output fragment waits less than a page: it asks again by itself.
LOGS_WAIT_SECONDS = 3


def _instance(pk: int) -> ContainerInstance:
    return get_object_or_404(ContainerInstance.objects.select_related("gateway"), pk=pk)


@requires(VIEW_INSTANCE)
@require_GET
@never_cache
def instance_container(request, pk: int):
    """The container's state as the agent last reported it."""
    instance = _instance(pk)
    return render(request, "containers/_container_status.html", {"instance": instance, "panel": panel(instance)})


@requires(VIEW_INSTANCE)
@require_GET
@never_cache
def instance_logs(request, pk: int):
    """The container's last lines of output, asked of the agent now (or the answer to ``?request=<id>``)."""
    instance = _instance(pk)
    pending = None
    if request.GET.get("request"):
        pending = (
            ControlRequest.objects.filter(
                pk=_uuid(request.GET["request"]), instance=instance, kind=ControlRequest.Kind.LOGS
            )
            .select_related("gateway")
            .first()
        )
    if pending is not None:
        reply = wait_for(pending, LOGS_WAIT_SECONDS)
    else:
        reply = ask(
            instance.gateway, ControlRequest.Kind.LOGS, instance=instance, user=request.user, wait=LOGS_WAIT_SECONDS
        )
    return render(
        request,
        "containers/_container_logs.html",
        {"instance": instance, "reply": reply, "answer": reply.answer or {}, "lines": LOG_LINES},
    )


def _uuid(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise Http404("No such request.") from None


@requires(PULL_INSTANCE)
@require_POST
def container_action(request, pk: int, action: str):
    instance = _instance(pk)
    if action not in ACTIONS:
        raise Http404("No such action.")
    if action in ("start", "restart") and not instance.enabled:
        # Said at once, without asking the agent (which refuses it too: the instance may change meanwhile).
        messages.error(request, disabled_message(instance))
        return redirect(instance)
    reply = ask(instance.gateway, action, instance=instance, user=request.user)
    error = (reply.answer or {}).get("error")
    if reply.pending:
        messages.info(request, f"{reply.note} The panel shows the container's state once the agent has acted.")
        outcome = "sent" if reply.request else "not sent"
    elif error:
        messages.error(request, error["message"])
        outcome = f"failed: {error['code']}"
    else:
        messages.success(request, reply.answer["message"])
        outcome = "ok"
    record(request, f"container.{action}", instance=instance, message=outcome)
    return redirect(instance)

"""The instance page's container panel (polled by htmx) and its Start / Stop / Restart buttons."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from orchestrator.audit.record import record
from orchestrator.models import ContainerInstance
from orchestrator.security.roles import PULL_INSTANCE, VIEW_INSTANCE, requires

from .daemon import ContainerError
from .status import ACTIONS, act, container_status


@requires(VIEW_INSTANCE)
@require_GET
@never_cache
def instance_container(request, pk: int):
    """The container's state and its last lines of output."""
    instance = get_object_or_404(ContainerInstance, pk=pk)
    status = container_status(instance)
    return render(request, "containers/_container_status.html", {"instance": instance, "status": status})


@requires(PULL_INSTANCE)
@require_POST
def container_action(request, pk: int, action: str):
    instance = get_object_or_404(ContainerInstance, pk=pk)
    if action not in ACTIONS:
        raise Http404("No such action.")
    try:
        messages.success(request, act(instance, action))
    except ContainerError as error:
        messages.error(request, error.message)
        record(request, f"container.{action}", instance=instance, message=f"failed: {error.code}")
    else:
        record(request, f"container.{action}", instance=instance, message="ok")
    return redirect(instance)

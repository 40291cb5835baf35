"""The gateways page (/gateways/), one gateway's page, and /gateways.json."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count, Q
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from orchestrator.models import Gateway, PullJob
from orchestrator.security.roles import ADD_GATEWAY, VIEW_INSTANCE, json_requires, requires

from .actions import GatewayError, add_gateway

STATES = (("online", "Online"), ("offline", "Offline"))


def _gateways(request):
    """The gateways matching the page's filters, with their queued and running pulls counted in the same query."""
    active = {
        "queued": Count("instances__pulls", filter=Q(instances__pulls__state=PullJob.State.QUEUED)),
        "running": Count("instances__pulls", filter=Q(instances__pulls__state=PullJob.State.RUNNING)),
    }
    gateways = Gateway.objects.annotate(instance_count=Count("instances", distinct=True), **active)
    query = request.GET.get("q", "").strip()[:63]
    if query:
        gateways = gateways.filter(name__icontains=query)
    state = request.GET.get("state", "")
    if state == "online":
        gateways = gateways.online()
    elif state == "offline":
        gateways = gateways.offline()
    return gateways, query, state


@requires(VIEW_INSTANCE)
@require_GET
def gateway_list(request):
    gateways, query, state = _gateways(request)
    return render(
        request, "gateways/gateway_list.html", {"gateways": gateways, "query": query, "state": state, "states": STATES}
    )


@require_GET
@never_cache
@json_requires(VIEW_INSTANCE, message="You may not see gateways.")
def gateway_json(request):
    gateways, _, _ = _gateways(request)
    return JsonResponse({"gateways": [as_json(gateway) for gateway in gateways]})


def as_json(gateway: Gateway) -> dict:
    facts = gateway.facts or {}
    return {
        "name": gateway.name,
        "online": gateway.online,
        "last_seen": gateway.last_seen.isoformat() if gateway.last_seen else None,
        "platform": facts.get("platform"),
        "docker_version": facts.get("docker_version"),
        "docker_error": facts.get("docker_error"),
        "storage_driver": facts.get("storage_driver"),
        "free_bytes": facts.get("free_bytes"),
        "cpus": facts.get("cpus"),
        "memory_bytes": facts.get("memory_bytes"),
        "containers_running": facts.get("containers_running"),
        "agent_version": facts.get("agent_version"),
        "concurrency": facts.get("concurrency"),
        "instances": getattr(gateway, "instance_count", None),
        "queued": getattr(gateway, "queued", None),
        "running": getattr(gateway, "running", None),
    }


@requires(VIEW_INSTANCE)
@require_GET
def gateway_detail(request, name: str):
    gateway = get_object_or_404(Gateway, name=name)
    instances = gateway.instances.all()[:200]
    pulls = PullJob.objects.filter(instance__gateway=gateway).select_related("instance__gateway")[:20]
    return render(request, "gateways/gateway_detail.html", {"gateway": gateway, "instances": instances, "pulls": pulls})


@requires(ADD_GATEWAY)
@require_POST
def gateway_add(request):
    try:
        gateway, token = add_gateway(request.POST.get("name", ""))
    except GatewayError as error:
        messages.error(request, str(error))
        return redirect("gateway-list")
    # Shown once, on the page that answers this POST; never stored, never in a message that lingers.
    return render(request, "gateways/gateway_token.html", {"gateway": gateway, "token": token}, status=201)

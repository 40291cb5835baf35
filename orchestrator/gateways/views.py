"""The gateways page (/gateways/), one gateway's page, and /gateways.json.

Both lists come from one ``.values()`` query whose counts (instances, queued and running pulls) are correlated
subqueries, so a request costs the same queries with 3 gateways or 3,000, and the page computes its counts only
for the 50 rows it shows. The subqueries count with ``FILTER (WHERE state = ...)`` over each gateway's own pulls
rather than ``WHERE state = ...``: without table statistics SQLite would otherwise drive them from the index on
``PullJob.state`` and read every active pull of the fleet once per gateway.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import BooleanField, Case, Count, IntegerField, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from orchestrator.models import ContainerInstance, Gateway, PullJob
from orchestrator.models.gateways import offline_after, offline_q, online_q
from orchestrator.security.roles import ADD_GATEWAY, VIEW_INSTANCE, json_requires, requires
from registries.views import json_error

from .actions import GatewayError, add_gateway

STATES = (("online", "Online"), ("offline", "Offline"))
PAGE_SIZE = 50  # rows of /gateways/, and of /gateways.json?page=N without per_page
MAX_PER_PAGE = 1000
FACTS = (
    "platform",
    "docker_version",
    "docker_error",
    "storage_driver",
    "free_bytes",
    "cpus",
    "memory_bytes",
    "containers_running",
    "agent_version",
    "concurrency",
)


@dataclass(frozen=True)
class Filters:
    """The lists' filters (part of the name, online or offline), judged against one instant for the request."""

    query: str
    state: str
    cutoff: datetime

    @classmethod
    def of(cls, request) -> Filters:
        state = request.GET.get("state", "")
        return cls(
            query=request.GET.get("q", "").strip()[:63],
            state=state if state in dict(STATES) else "",
            cutoff=timezone.now() - offline_after(),
        )

    @property
    def online(self) -> Q:
        return online_q(self.cutoff)

    @property
    def offline(self) -> Q:
        return offline_q(self.cutoff)

    @property
    def where(self) -> Q:
        where = Q(name__icontains=self.query) if self.query else Q()
        if self.state:
            where &= self.online if self.state == "online" else self.offline
        return where

    def rows(self):
        """The matching gateways as dicts: name, last_seen, facts, is_online and the three counts."""
        return _counted(Gateway.objects.filter(self.where), self.cutoff).values(
            "name", "last_seen", "facts", "is_online", "instance_count", "queued", "running"
        )

    def summary(self) -> dict:
        """One aggregate query: the fleet's totals, and how many gateways match the filters."""
        return Gateway.objects.aggregate(
            total=Count("pk"),
            online=Count("pk", filter=self.online),
            matching=Count("pk", filter=self.where),
        )


def _counted(gateways, cutoff: datetime):
    """Annotate each gateway with is_online, instance_count, queued and running, all in the same query."""
    instances = ContainerInstance.objects.filter(gateway=OuterRef("pk")).order_by().values("gateway")
    pulls = PullJob.objects.filter(instance__gateway=OuterRef("pk")).order_by().values("instance__gateway")

    def count(of, **where):
        counted = of.annotate(n=Count("pk", filter=Q(**where) if where else None)).values("n")
        return Coalesce(Subquery(counted, output_field=IntegerField()), 0)

    return gateways.annotate(
        is_online=Case(When(online_q(cutoff), then=Value(True)), default=Value(False), output_field=BooleanField()),
        instance_count=count(instances),
        queued=count(pulls, state=PullJob.State.QUEUED),
        running=count(pulls, state=PullJob.State.RUNNING),
    )


def as_json(row: dict) -> dict:
    """One gateway of /gateways.json, from a row of :meth:`Filters.rows`."""
    facts = row["facts"] or {}
    last_seen = row["last_seen"]
    return {
        "name": row["name"],
        "online": row["is_online"],
        "last_seen": last_seen.isoformat() if last_seen else None,
        **{key: facts.get(key) for key in FACTS},
        "instances": row["instance_count"],
        "queued": row["queued"],
        "running": row["running"],
    }


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


@requires(VIEW_INSTANCE)
@require_GET
def gateway_list(request):
    filters = Filters.of(request)
    summary = filters.summary()
    paginator = Paginator(filters.rows(), PAGE_SIZE)
    paginator.count = summary["matching"]  # counted by the summary's query: no COUNT query of its own
    page = paginator.get_page(request.GET.get("page"))  # not a number: page 1; past the end: the last page
    if paginator.count == 1:
        shown = "1 gateway"
    else:
        shown = f"{page.start_index():,}–{page.end_index():,} of {_plural(paginator.count, 'gateway')}"
    context = {
        "page": page,
        "gateways": page.object_list,
        "shown": shown,
        "summary": f"{_plural(summary['total'], 'gateway')}: {summary['online']:,} online, "
        f"{summary['total'] - summary['online']:,} offline",
        "query": filters.query,
        "state": filters.state,
        "states": STATES,
    }
    return render(request, "gateways/gateway_list.html", context)


class BadParameter(ValueError):
    pass


def _positive(request, name: str, most: int = 10**9) -> int | None:
    """The whole number ``name`` of the query string, from 1 to ``most``; None when it is absent or blank."""
    raw = request.GET.get(name, "").strip()
    if not raw:
        return None
    # ASCII digits, at most 9: int() raises on "²" (a digit to str.isdigit) and on a string of 5,000 digits.
    number = int(raw) if raw.isascii() and raw.isdecimal() and len(raw) <= 9 else 0
    if not 1 <= number <= most:
        limit = f"from 1 to {most:,}" if most < 10**9 else "from 1 up"
        raise BadParameter(f"{name} must be a whole number {limit}, not {raw[:20]!r}.")
    return number


@require_GET
@never_cache
@json_requires(VIEW_INSTANCE, message="You may not see gateways.")
def gateway_json(request):
    """Every matching gateway by default; ``?page=N&per_page=M`` (M up to 1,000, 50 by default) for one page.

    ``count`` is how many gateways match the filters, on every page. A page past the last is an empty list.
    """
    filters = Filters.of(request)
    try:
        page = _positive(request, "page")
        per_page = _positive(request, "per_page", MAX_PER_PAGE)
    except BadParameter as error:
        return json_error(400, "invalid", str(error))
    rows = filters.rows()
    if page is None and per_page is None:
        gateways = [as_json(row) for row in rows]
        return JsonResponse({"gateways": gateways, "count": len(gateways)})
    page, per_page = page or 1, per_page or PAGE_SIZE
    start = (page - 1) * per_page
    gateways = [as_json(row) for row in rows[start : start + per_page]]
    count = Gateway.objects.filter(filters.where).count()
    return JsonResponse({"gateways": gateways, "count": count, "page": page, "per_page": per_page})


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

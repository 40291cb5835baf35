"""The gateways page and ``/gateways.json`` with a fleet of gateways heartbeating: latency and queries per request.

Gateway rows are bulk-created in the bench database with the facts an agent
reports (taken once from the stack's daemon with the agent's own
``daemon_facts``), each with a few instances and a history of pulls (one
instance in ten with a queued or running pull, so the page's counts are not
all zero). While the large size is measured, a thread in this process calls
``orchestrator.gateways.actions.beat`` (what an agent's heartbeat calls) for
every gateway in turn, at the rate of all of them beating every
``GATEWAY_HEARTBEAT_SECONDS`` (15 s: 1,000 gateways make 67 beats a second).

At a small and the large size: the p95 latency of ``/gateways/`` and
``/gateways.json`` over HTTP through gunicorn (one logged-in session,
sequential requests), and, in this process with Django's test client under
``CaptureQueriesContext``, the SQL queries of one request of each.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from .console import Console
from .report import Figure, median, percentile
from .status import LAYERS, latencies, queries_per_request

PREFIX = "site-"
HEARTBEAT_SECONDS = 15.0  # GATEWAY_HEARTBEAT_SECONDS' default, as deployed


def agent_facts(docker_host: str) -> dict:
    """What one agent's beat writes: the daemon's facts as the heartbeat gathers them, and the agent's own."""
    from django.conf import settings

    from orchestrator.gateways.heartbeat import AGENT_VERSION, daemon_facts

    return {
        **daemon_facts(docker_host),
        "agent_version": AGENT_VERSION,
        "concurrency": settings.AGENT_CONCURRENCY,
        "docker_host": docker_host,
    }


def _facts(base: dict, n: int) -> dict:
    facts = dict(base)
    facts["containers_running"] = n % 7
    if isinstance(facts.get("free_bytes"), int):
        facts["free_bytes"] -= (n % 100) * 1_048_576
    return facts


def populate(total: int, base_facts: dict, instances_each: int, jobs_each: int) -> None:
    """Add gateways (with instances and pulls) until there are ``total`` gateway rows."""
    from django.db import transaction
    from django.utils import timezone

    from orchestrator.models import ContainerInstance, Gateway, PullJob

    have = Gateway.objects.count()
    if have >= total:
        return
    start = Gateway.objects.filter(name__startswith=PREFIX).count()
    now = timezone.now()
    with transaction.atomic():
        gateways = Gateway.objects.bulk_create(
            [
                Gateway(name=f"{PREFIX}{n:05d}", last_seen=now, facts=_facts(base_facts, n))
                for n in range(start, start + total - have)
            ],
            batch_size=1000,
        )
        instances = ContainerInstance.objects.bulk_create(
            [
                ContainerInstance(
                    gateway=gateway,
                    name=f"app-{i}",
                    image_name=f"registry.example:5000/team/app-{i}",
                    image_tag="1.0",
                    registry_url="registry.example:5000",
                    registry_username="robot",
                )
                for gateway in gateways
                for i in range(instances_each)
            ],
            batch_size=2000,
        )
        jobs = []
        for number, instance in enumerate(instances):
            for j in range(jobs_each):
                newest = j == jobs_each - 1
                # The newest pull of one instance in ten is queued, of another in ten running.
                state = {0: "queued", 5: "running"}.get(number % 10, "succeeded") if newest else "succeeded"
                jobs.append(
                    PullJob(
                        instance=instance,
                        reference=f"{instance.image_name}:{instance.image_tag}",
                        state=state,
                        progress=None if state == "queued" else (42 if state == "running" else 100),
                        bytes_total=314_572_800,
                        layers_total=6,
                        layers=LAYERS if state == "running" else [],
                        message="Downloading",
                        attempt=1,
                        queued_at=now - timedelta(hours=jobs_each - j),
                        started_at=None if state == "queued" else now - timedelta(hours=jobs_each - j),
                    )
                )
        PullJob.objects.bulk_create(jobs, batch_size=2000)


def remove_populated() -> None:
    """Delete what :func:`populate` made, so the figures measured after these see the database as before."""
    from orchestrator.models import ContainerInstance, Gateway, PullJob

    PullJob.objects.filter(instance__gateway__name__startswith=PREFIX).delete()
    ContainerInstance.objects.filter(gateway__name__startswith=PREFIX).delete()
    Gateway.objects.filter(name__startswith=PREFIX).delete()


class Heartbeats:
    """Every gateway's beat in turn, spread evenly so each beats once per ``period`` s; use as a context manager."""

    def __init__(self, names: list[str], base_facts: dict, period: float = HEARTBEAT_SECONDS) -> None:
        self.names = names
        self.base_facts = base_facts
        self.interval = period / len(names)
        self.beats = 0
        self.errors = 0
        self.late_max = 0.0
        self.elapsed = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-heartbeats", daemon=True)

    def __enter__(self) -> Heartbeats:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    @property
    def rate(self) -> float:
        return self.beats / self.elapsed if self.elapsed else 0.0

    def _run(self) -> None:
        from django.db import DatabaseError, connection

        from orchestrator.gateways.actions import beat

        started = time.monotonic()
        try:
            while True:
                due = started + self.beats * self.interval
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    return
                self.late_max = max(self.late_max, time.monotonic() - due)
                n = self.beats
                try:
                    beat(self.names[n % len(self.names)], _facts(self.base_facts, n))
                except DatabaseError:
                    self.errors += 1
                self.beats += 1
                self.elapsed = time.monotonic() - started
        finally:
            connection.close()


def _measure(console: Console, requests: int) -> dict:
    from orchestrator.models import ContainerInstance, Gateway, PullJob

    for path in ("/gateways/", "/gateways.json"):  # warm this size's pages and the database cache
        console.get(path)
    list_ms = latencies(console, ["/gateways/"], requests)
    json_ms = latencies(console, ["/gateways.json"], requests)
    page = console.get("/gateways/")
    listed = console.get("/gateways.json")
    gateways = listed.json()["gateways"]
    return {
        "gateways": Gateway.objects.count(),
        "instances": ContainerInstance.objects.count(),
        "pulls": PullJob.objects.count(),
        "online_in_json": sum(1 for g in gateways if g["online"]),
        "rows_on_page": page.text.count("<tr data-gateway="),
        "page_kb": round(len(page.content) / 1024, 1),
        "json_kb": round(len(listed.content) / 1024, 1),
        "list_p50_ms": round(median(list_ms), 2),
        "list_p95_ms": round(percentile(list_ms, 95), 2),
        "json_p50_ms": round(median(json_ms), 2),
        "json_p95_ms": round(percentile(json_ms, 95), 2),
        "list_queries": queries_per_request("/gateways/"),
        "json_queries": queries_per_request("/gateways.json"),
        "requests_each": requests,
    }


def gateway_pages(bench, small: int, large: int, requests: int, instances_each: int, jobs_each: int, log):
    from orchestrator.models import Gateway

    began = time.monotonic()
    facts = agent_facts(bench.info.docker_host)
    console = bench.console()
    try:
        populate(small, facts, instances_each, jobs_each)
        low = _measure(console, requests)
        log(f"  {low['gateways']} gateways: {low}")
        started = time.monotonic()
        populate(large, facts, instances_each, jobs_each)
        log(f"  rows created in {time.monotonic() - started:.1f} s")
        names = list(Gateway.objects.values_list("name", flat=True))
        with Heartbeats(names, facts) as beats:
            time.sleep(1.0)  # the beats under way before the first request
            high = _measure(console, requests)
        high.update(
            beats_per_s_wanted=round(len(names) / HEARTBEAT_SECONDS, 1),
            beats_per_s_written=round(beats.rate, 1),
            beats_written=beats.beats,
            beat_errors=beats.errors,
            beat_late_max_ms=round(beats.late_max * 1000, 1),
        )
        log(f"  {high['gateways']} gateways, heartbeating: {high}")
    finally:
        console.close()
        remove_populated()
    log(f"  gateway page figures in {time.monotonic() - began:.1f} s")
    return _figures(low, high, f"{instances_each} instances of {jobs_each} pulls each")


def _figures(low: dict, high: dict, rows: str) -> list[Figure]:
    n = f"{high['gateways']:,}"
    rate = high["beats_per_s_written"]
    paginated = "all of them on one page (it does not paginate)" if high["rows_on_page"] >= high["gateways"] else ""
    common = (
        "Over HTTP through gunicorn (2 sync workers), one logged-in session, sequential requests, while a thread "
        f"writes the beats with the agents' own beat(): {n} gateways heartbeating every {HEARTBEAT_SECONDS:.0f} s "
        f"({rate} beats/s written); each made gateway has {rows}. 100 ms (what feels instant) is this harness's "
        "target."
    )
    return [
        Figure(
            name="gateway_list_p95_ms",
            title=f"`/gateways/` p95 at {n} gateways heartbeating",
            value=high["list_p95_ms"],
            unit="ms",
            op="<=",
            limit=100,
            note=f"{common} The page lists {high['rows_on_page']:,} rows, {paginated or 'paginated'}; "
            f"{high['page_kb']:,} KiB of HTML.",
            detail={"p50_ms": high["list_p50_ms"], "sizes": {"small": low, "large": high}},
        ),
        Figure(
            name="gateway_json_p95_ms",
            title=f"`/gateways.json` p95 at {n} gateways heartbeating",
            value=high["json_p95_ms"],
            unit="ms",
            op="<=",
            limit=100,
            note=f"{common} Every gateway in one answer ({high['json_kb']:,} KiB).",
            detail={"p50_ms": high["json_p50_ms"]},
        ),
        Figure(
            name="gateway_list_queries",
            title="SQL queries per `/gateways/`",
            value=high["list_queries"],
            unit="queries",
            op="<=",
            limit=low["list_queries"],
            note=f"Must not grow with the rows: the target is the count at {low['gateways']:,} gateways.",
            detail={"small": low["list_queries"], "large": high["list_queries"]},
        ),
        Figure(
            name="gateway_json_queries",
            title="SQL queries per `/gateways.json`",
            value=high["json_queries"],
            unit="queries",
            op="<=",
            limit=low["json_queries"],
            note=f"Must not grow with the rows: the target is the count at {low['gateways']:,} gateways.",
            detail={"small": low["json_queries"], "large": high["json_queries"]},
        ),
    ]

"""Fleet figures (issue "Gateways"): G gateways x N images at once against G x N ``docker pull``; the agent's memory.

The fleet (bench/fleet_stack.py) is G sandboxed dockerds with a gateway and an
agent each, all pulling from the stack's one registry. Every gateway gets N
images of its own (random layers: no two of the G x N share a layer but the
busybox base) and one instance per image, made in process through the
console's own form and save (``ContainerInstanceForm`` + ``save_instance``,
without a pull).

(a) is G x N ``docker pull`` started at once, N against each daemon; (b)
queues the G x N pulls at once with ``queue_pull`` (what the admin's "Pull now"
on a selection and ``manage.py pull`` call; each dispatches its task as it
commits), then reads the jobs from the database until all have ended. Every
daemon is emptied (containers and images) before each run of either. The
console's time runs from the first ``queue_pull`` to the last image in place
(the attempt's end, written by the agent when the pull is done and its
container phase begins, as figure 5 counts it); the time until every job has
succeeded (its container created and started too, which ``docker pull`` does not
do) is reported beside it.

Memory: the resident set of each agent's process tree, sampled every 100 ms
(/proc), idle (after one warm-up pull, settled) and during the console's runs,
when each agent runs its N pulls.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from .console import ENDED, FormValues
from .fleet_stack import Fleet, Member, run_all
from .harness import USERNAME, Bench, BenchError
from .procmem import RssSampler
from .report import Figure, median

POLL = 0.05
STALLED = 60.0
SAMPLE_EVERY = 0.1
MEMORY_LIMIT = 1.2  # peak <= 1.2 x idle


@dataclass
class FleetConfig:
    gateways: int
    images: int  # per gateway
    layers: int
    layer_mb: int
    rounds: int
    idle_seconds: float


def _user():
    from django.contrib.auth.models import User

    return User.objects.get(username=USERNAME)


def _ts(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


def make_instances(bench: Bench, fleet: Fleet, refs: dict[str, list[str]]) -> list:
    """One instance per image on its gateway, through the console's form and save (no pull).

    Without the save-time access check (CHECK_IMAGE_ON_SAVE off here): it is not what is measured, and the
    figures 1 and 5 time it already.
    """
    from django.test import Client
    from django.test.utils import override_settings

    user = _user()
    client = Client()
    client.force_login(user)
    page = client.get("/instances/new/")
    if page.status_code != 200:
        raise BenchError(f"GET /instances/new/ in process: HTTP {page.status_code}")
    parser = FormValues("instance-form")
    parser.feed(page.content.decode())
    defaults = parser.values  # what a browser submits as the form renders, container settings included
    instances = []
    with override_settings(CHECK_IMAGE_ON_SAVE=False):
        for member in fleet.members:
            instances += _save_all(bench, member.name, refs[member.name], defaults, user)
    return instances


def _save_all(bench: Bench, gateway_name: str, refs: list[str], defaults: dict, user) -> list:
    from orchestrator.instances.actions import save_instance
    from orchestrator.instances.forms import ContainerInstanceForm
    from orchestrator.models import ContainerInstance, Gateway

    gateway = Gateway.objects.get(name=gateway_name)
    instances = []
    for number, reference in enumerate(refs):
        name = f"fleet-{number:02d}"
        existing = ContainerInstance.objects.filter(gateway=gateway, name=name).first()
        data = {**defaults, **bench.form_fields(reference, name), "gateway": str(gateway.pk)}
        form = ContainerInstanceForm(data, instance=existing or ContainerInstance(), user=user)
        if not form.is_valid():
            raise BenchError(f"instance form refused {reference} on {gateway_name}: {form.errors.as_json()}")
        instance, _, _ = save_instance(form, user, pull=False)
        instances.append(instance)
    return instances


@dataclass
class ConsoleRound:
    queued_s: float  # first queue_pull -> last one returned
    queue_call_ms: list[float]  # each queue_pull (its job row, then its task sent as it commits)
    in_place_s: float  # first queue_pull -> last image in place
    succeeded_s: float  # first queue_pull -> last job succeeded
    most_at_once: dict[str, int]  # per gateway, from the attempts' start and end


def console_round(instances: list, user) -> ConsoleRound:
    from orchestrator.pulls.actions import queue_pull

    started = time.time()
    ids, calls = [], []
    for instance in instances:
        before = time.perf_counter()
        job, created = queue_pull(instance, user)
        calls.append((time.perf_counter() - before) * 1000)
        if not created:
            raise BenchError(f"a pull of {instance} was still under way (job {job.pk})")
        ids.append(job.pk)
    queued = time.time()
    rows = _wait(ids)
    failed = [row for row in rows if row["state"] != "succeeded"]
    if failed:
        raise BenchError(f"fleet pulls did not succeed: {[(r['pk'], r['error_code'], r['message']) for r in failed]}")
    spans: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        attempt = (row["attempts"] or [{}])[-1]
        begin, end = _ts(attempt.get("started_at")), _ts(attempt.get("finished_at"))
        if attempt.get("outcome") != "succeeded" or begin is None or end is None:
            raise BenchError(f"job {row['pk']} has no succeeded attempt: {row['attempts']}")
        spans.setdefault(row["instance__gateway__name"], []).append((begin, end))
    return ConsoleRound(
        queued_s=queued - started,
        queue_call_ms=calls,
        in_place_s=max(end for pairs in spans.values() for _, end in pairs) - started,
        succeeded_s=max(row["finished_at"].timestamp() for row in rows) - started,
        most_at_once={name: _most_at_once(pairs) for name, pairs in sorted(spans.items())},
    )


def _wait(ids: list[int], timeout: float = 900) -> list[dict]:
    from orchestrator.models import PullJob

    fields = ("pk", "state", "attempts", "finished_at", "error_code", "message", "instance__gateway__name")
    deadline = time.monotonic() + timeout
    last, changed = None, time.monotonic()
    while True:
        rows = list(PullJob.objects.filter(pk__in=ids).values(*fields, "bytes_done", "container_state"))
        if all(row["state"] in ENDED for row in rows):
            return rows
        seen = [(r["state"], r["bytes_done"], r["container_state"]) for r in rows]
        if seen != last:
            last, changed = seen, time.monotonic()
        elif time.monotonic() - changed > STALLED:
            raise BenchError(f"fleet pulls have not moved for {STALLED} s (see the agents' logs): {seen}")
        if time.monotonic() > deadline:
            raise BenchError(f"fleet pulls did not end in {timeout} s: {seen}")
        time.sleep(POLL)


def _most_at_once(spans: list[tuple[float, float]]) -> int:
    edges = sorted([(begin, 1) for begin, _ in spans] + [(end, -1) for _, end in spans])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def cli_round(fleet: Fleet, refs: dict[str, list[str]]) -> float:
    members = {member.name: member for member in fleet.members}
    calls = [lambda m=members[name], r=ref: fleet.cli_pull(m, r) for name, group in refs.items() for ref in group]
    started = time.perf_counter()
    run_all(calls)
    return time.perf_counter() - started


def _push(bench: Bench, member: Member, config: FleetConfig) -> list[str]:
    """The gateway's images, straight to the registry (as ``push_random_image``; a build dir of its own, so the
    gateways' pushes can run side by side)."""
    from tests.stack.random_images import push_layers_via_api

    info = bench.info
    build = bench.work_dir / "fleet" / f"build-{member.name}"
    return [
        push_layers_via_api(
            info.registry,
            info.registry_username,
            info.registry_password,
            f"bench/{member.name}-{i}",
            "1",
            config.layers,
            config.layer_mb,
            build,
        )
        for i in range(config.images)
    ]


def fleet_figures(bench: Bench, config: FleetConfig, log) -> list[Figure]:
    from orchestrator.models import Gateway

    began = time.monotonic()
    with Fleet(bench, config.gateways, log) as fleet:
        started = time.monotonic()
        pushed = run_all([lambda m=member: _push(bench, m, config) for member in fleet.members])
        refs = {member.name: group for member, group in zip(fleet.members, pushed, strict=True)}
        total = config.gateways * config.images
        log(f"  pushed {total} images ({config.layers} x {config.layer_mb} MiB) in {time.monotonic() - started:.1f} s")
        instances = make_instances(bench, fleet, refs)
        user = _user()
        pids = {member.name: fleet.agent_pid(member) for member in fleet.members}
        with RssSampler(list(pids.values()), SAMPLE_EVERY) as fresh:
            time.sleep(config.idle_seconds)
        # Warm-up, not counted: one pull per agent (its first task, the console's first send from here).
        console_round([instances[i * config.images] for i in range(config.gateways)], user)
        fleet.clear()
        with RssSampler(list(pids.values()), SAMPLE_EVERY) as idle:
            time.sleep(config.idle_seconds)
        cli: list[float] = []
        rounds: list[ConsoleRound] = []
        peaks: dict[str, list[float]] = {name: [] for name in pids}
        for number in range(config.rounds):
            fleet.clear()
            cli.append(cli_round(fleet, refs))
            fleet.clear()
            with RssSampler(list(pids.values()), SAMPLE_EVERY) as busy:
                rounds.append(console_round(instances, user))
            for name, pid in pids.items():
                peaks[name].append(round(busy.peak_mb(pid), 1))
            log(
                f"  fleet round {number + 1}/{config.rounds}: {total} x docker pull {cli[-1]:.2f} s, console "
                f"{rounds[-1].in_place_s:.2f} s to all in place ({rounds[-1].queued_s:.2f} s to queue them), "
                f"{rounds[-1].succeeded_s:.2f} s to all succeeded; agent RSS peaks "
                f"{[peaks[name][-1] for name in pids]} MB"
            )
        fleet.clear()
        facts = {g.name: g.facts for g in Gateway.objects.filter(name__in=list(pids))}
    log(f"  fleet figures in {time.monotonic() - began:.1f} s")
    concurrency = {name: (facts.get(name) or {}).get("concurrency") for name in pids}
    memory = {
        name: {
            "fresh_idle_mb": round(fresh.median_mb(pid), 1),
            "idle_mb": round(idle.median_mb(pid), 1),
            "peak_mb_per_round": peaks[name],
            "idle_samples": idle.count(pid),
        }
        for name, pid in pids.items()
    }
    return [_ratio_figure(config, cli, rounds, concurrency), _memory_figure(config, memory, concurrency)]


def _ratio_figure(config: FleetConfig, cli: list[float], rounds: list[ConsoleRound], concurrency: dict) -> Figure:
    total = config.gateways * config.images
    a = median(cli)
    b = median([r.in_place_s for r in rounds])
    done = median([r.succeeded_s for r in rounds])
    return Figure(
        name="fleet_pull_ratio",
        title=f"{config.gateways} gateways x {config.images} images at once, console / {total} parallel docker pull",
        value=round(b / a, 3),
        unit="ratio",
        op="<=",
        limit=1.15,
        note=f"{config.gateways} sandboxed dockerds, each a gateway with its agent as deployed (no -c); {total} "
        f"different images of {config.layers} random layers of {config.layer_mb} MiB, {config.images} per gateway, "
        "from one registry. docker pull: all at once, each against its gateway's daemon. Console: all queued at "
        "once (queue_pull, as the admin's Pull now), timed from the first queue_pull to the last image in place "
        "(server time of the attempt's end, no polling delay). Every daemon emptied before each run. The time to "
        "all succeeded adds each job's container phase (create, start, see it run).",
        detail={
            "docker_pull_wall_median_s": round(a, 3),
            "console_in_place_wall_median_s": round(b, 3),
            "console_succeeded_wall_median_s": round(done, 3),
            "succeeded_over_docker_pull": round(done / a, 3),
            "docker_pull_rounds_s": [round(x, 3) for x in cli],
            "console_in_place_rounds_s": [round(r.in_place_s, 3) for r in rounds],
            "console_succeeded_rounds_s": [round(r.succeeded_s, 3) for r in rounds],
            "console_queue_all_rounds_s": [round(r.queued_s, 3) for r in rounds],
            "queue_pull_ms_median_max_per_round": [
                [round(median(r.queue_call_ms), 1), round(max(r.queue_call_ms), 1)] for r in rounds
            ],
            "most_pulls_at_once_per_gateway": [r.most_at_once for r in rounds],
            "agent_concurrency_reported": concurrency,
        },
    )


def _memory_figure(config: FleetConfig, memory: dict[str, dict], concurrency: dict) -> Figure:
    # The agent that grew most, against its own idle figure.
    name = max(memory, key=lambda n: max(memory[n]["peak_mb_per_round"]) / max(memory[n]["idle_mb"], 0.1))
    worst = memory[name]
    idle, peak = worst["idle_mb"], max(worst["peak_mb_per_round"])
    return Figure(
        name="agent_rss_peak_mb",
        title=f"Agent RSS peak during {config.images} pulls (idle {idle:.1f} MB)",
        value=round(peak, 1),
        unit="MB",
        op="<=",
        limit=round(idle * MEMORY_LIMIT, 1),
        note=f"Resident memory of the agent's whole process tree (/proc, every {SAMPLE_EVERY * 1000:.0f} ms). Idle: "
        f"median over {config.idle_seconds:.0f} s after one warm-up pull; peak: while the agent runs its "
        f"{config.images} pulls of the fleet figure. Target: peak <= {MEMORY_LIMIT} x idle, for the agent that grew "
        f"most ({name}); every agent's figures below (fresh_idle_mb: just started, before any pull).",
        detail={"agents": memory, "agent_concurrency_reported": concurrency, "sample_interval_s": SAMPLE_EVERY},
    )

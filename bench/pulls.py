"""Figures 1, 2, 5 and 6: pulls through the console against ``docker pull``, on the same daemon.

(a) is the docker CLI after ``docker login``; (b) is the console as a user drives
it: Save the new-instance form (which first checks the image through the
daemon), then watch the job JSON until it says the image is in place. The two
alternate, with every container and image removed from the daemon before each
cold run.

"In place" is what ``docker pull`` delivers: the job JSON says succeeded, or its
container phase (``container_state``) has begun; when the console goes on to
create and start the container, that is work ``docker pull`` does not do, and
the time to the job's end is reported beside it (``job_end``). The times are
those of the first poll that saw it (the JSON is polled every ``POLL`` s, so
watching adds half an interval on average; nothing is subtracted for it).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from .console import Console, ConsoleError, Watch, check_succeeded, poll_once
from .harness import Bench
from .report import Figure, median

POLL = 0.05  # one job watched at a time
POLL_MANY = 0.05  # pause between two rounds over the eight jobs


@dataclass
class PullConfig:
    layers: int
    layer_mb: int
    runs: int
    uptodate_runs: int
    concurrent_images: int
    concurrent_layers: int
    concurrent_layer_mb: int
    concurrent_rounds: int


class _Names:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}-{self.n:03d}"


def _console_pull(bench: Bench, console: Console, reference: str, name: str) -> Watch:
    form = console.open_form()  # the user opens the form before clicking Save: not timed
    watch = console.save(bench.form_fields(reference, name), form)
    return console.poll(watch, interval=POLL, timeout=900)


def warm_up(bench: Bench, console: Console, names: _Names) -> None:
    """One pull each way of the small seed image (not counted): first requests import code and open pools."""
    reference = bench.info.images["busybox"]
    bench.clear_images()
    bench.cli_pull(reference)
    bench.clear_images()
    for _ in range(2):  # two gunicorn workers, two worker processes
        _console_pull(bench, console, reference, names("warmup"))
        bench.clear_images()


def cold_and_uptodate(bench: Bench, config: PullConfig, log) -> list[Figure]:
    """Figures 1 (cold pull), 2 (up-to-date pull) and 6 (Save -> first progress)."""
    names = _Names()
    started = time.monotonic()
    reference = bench_push(bench, "bench/big", "1", config.layers, config.layer_mb)
    log(f"pushed {reference} ({config.layers} x {config.layer_mb} MiB) in {time.monotonic() - started:.1f} s")
    console = bench.console()
    try:
        warm_up(bench, console, names)
        cli: list[float] = []
        watches: list[Watch] = []
        for run in range(config.runs):
            bench.clear_images()
            cli.append(bench.cli_pull(reference))
            bench.clear_images()
            watches.append(_console_pull(bench, console, reference, names("cold")))
            log(f"  cold run {run + 1}/{config.runs}: docker pull {cli[-1]:.2f} s, console {watches[-1].phases()}")
        # Up to date: the image is present; nothing to download, only the registry's manifest to compare.
        bench.cli_pull(reference)
        cli_up: list[float] = []
        watches_up: list[Watch] = []
        for run in range(config.uptodate_runs):
            cli_up.append(bench.cli_pull(reference))
            watches_up.append(_console_pull(bench, console, reference, names("uptodate")))
            log(
                f"  up-to-date run {run + 1}/{config.uptodate_runs}: docker pull {cli_up[-1]:.3f} s, "
                f"console {watches_up[-1].phases()}"
            )
            if not str(watches_up[-1].final.get("message")).startswith("Image is up to date"):
                raise ConsoleError(f"expected an up-to-date pull: {watches_up[-1].final}")
        bench.clear_images()
    finally:
        console.close()
    return [*_cold_figures(cli, watches, config), *_uptodate_figures(cli_up, watches_up), _first_progress(watches)]


def bench_push(bench: Bench, repo: str, tag: str, layers: int, layer_mb: int) -> str:
    from tests.stack import push_random_image

    return push_random_image(bench.info, repo, tag, layers, layer_mb)


def _phase_medians(watches: list[Watch]) -> dict[str, float]:
    phases = [w.phases() for w in watches]
    return {key: round(median([p[key] for p in phases if key in p]), 4) for key in phases[0]}


def _cold_figures(cli: list[float], watches: list[Watch], config: PullConfig) -> list[Figure]:
    console = [w.pull_seconds for w in watches]
    a, b = median(cli), median(console)
    return [
        Figure(
            name="pull_overhead_ratio",
            title="Cold pull, console / docker pull",
            value=round(b / a, 3),
            unit="ratio",
            op="<=",
            limit=1.05,
            note=f"Image of {config.layers} random layers of {config.layer_mb} MiB (plus the busybox base layer), "
            f"pulled {config.runs} times each way, alternating, everything removed from the daemon before each run. "
            "Console time: Save POST -> first poll of the job JSON saying the image is in place.",
            detail={
                "docker_pull_median_s": round(a, 3),
                "console_median_s": round(b, 3),
                "console_extra_median_s": round(b - a, 3),
                "docker_pull_runs_s": [round(x, 3) for x in cli],
                "console_runs_s": [round(x, 3) for x in console],
                "console_phases_median_s": _phase_medians(watches),
                "bytes_downloaded": watches[0].final.get("bytes_total"),
                "poll_interval_s": POLL,
            },
        )
    ]


def _uptodate_figures(cli: list[float], watches: list[Watch]) -> list[Figure]:
    console = [w.pull_seconds for w in watches]
    a, b = median(cli), median(console)
    detail = {
        "docker_pull_median_s": round(a, 4),
        "console_median_s": round(b, 4),
        "docker_pull_runs_s": [round(x, 4) for x in cli],
        "console_runs_s": [round(x, 4) for x in console],
        "console_phases_median_s": _phase_medians(watches),
        "poll_interval_s": POLL,
    }
    return [
        Figure(
            name="uptodate_pull_ratio",
            title="Up-to-date pull, console / docker pull",
            value=round(b / a, 3),
            unit="ratio",
            op="<=",
            limit=1.3,
            note="The image is already present; both ask the registry for the manifest and find nothing to download.",
            detail=detail,
        ),
        Figure(
            name="uptodate_pull_extra_ms",
            title="Up-to-date pull, console minus docker pull",
            value=round((b - a) * 1000, 1),
            unit="ms",
            op="<",
            limit=500,
            detail={"console_minus_docker_median_ms": round((b - a) * 1000, 1)},
        ),
    ]


def _first_progress(watches: list[Watch]) -> Figure:
    times = [w.first_progress_at - w.saved_at for w in watches]
    return Figure(
        name="first_progress_ms",
        title="Save to first progress in the job JSON",
        value=round(median(times) * 1000, 1),
        unit="ms",
        op="<",
        limit=1000,
        note="From the Save POST to the first poll whose JSON lists layer progress, in the cold runs of the first "
        f"figure (Redis broker; the JSON polled every {POLL * 1000:.0f} ms, so a poll adds up to that much).",
        detail={"runs_ms": [round(t * 1000, 1) for t in times], "poll_interval_s": POLL},
    )


# ----------------------------------------------------------- concurrency


def concurrent(bench: Bench, config: PullConfig, log) -> Figure:
    """Figure 5: N different images at once, console vs N parallel ``docker pull``."""
    refs = [
        bench_push(bench, f"bench/many{i}", "1", config.concurrent_layers, config.concurrent_layer_mb)
        for i in range(config.concurrent_images)
    ]
    names = _Names()
    consoles = [bench.console() for _ in refs]  # one browser tab (session) per form
    cli_walls: list[float] = []
    console_walls: list[float] = []
    end_walls: list[float] = []
    at_once: list[int] = []
    try:
        for round_ in range(config.concurrent_rounds):
            bench.clear_images()
            cli_walls.append(_parallel_cli(bench, refs))
            bench.clear_images()
            wall, job_end, most = _parallel_console(bench, consoles, refs, names)
            console_walls.append(wall)
            end_walls.append(job_end)
            at_once.append(most)
            log(
                f"  concurrent round {round_ + 1}/{config.concurrent_rounds}: {len(refs)} x docker pull "
                f"{cli_walls[-1]:.2f} s, console {wall:.2f} s"
            )
        bench.clear_images()
    finally:
        for console in consoles:
            console.close()
    a, b = median(cli_walls), median(console_walls)
    concurrency = _reported_concurrency()
    return Figure(
        name="concurrent_pull_ratio",
        title=f"{len(refs)} images at once on one gateway (agent defaults), console / {len(refs)} parallel docker pull",
        value=round(b / a, 3),
        unit="ratio",
        op="<=",
        limit=1.1,
        note=f"{len(refs)} different images of {config.concurrent_layers} random layers of "
        f"{config.concurrent_layer_mb} MiB, saved at once through the form; wall time from the first start to the "
        "last image in place. The agent of local runs as deployed "
        + (
            f"(-c {bench.worker_concurrency} given on the command line, not the default)."
            if bench.worker_concurrency
            else f"(no -c: its default, {concurrency} pulls at once as its heartbeat reports)."
        ),
        detail={
            "docker_pull_wall_median_s": round(a, 3),
            "console_wall_median_s": round(b, 3),
            "docker_pull_rounds_s": [round(x, 3) for x in cli_walls],
            "console_rounds_s": [round(x, 3) for x in console_walls],
            "console_job_end_rounds_s": [round(x, 3) for x in end_walls],
            "worker_concurrency_option": bench.worker_concurrency or "none (the agent's default)",
            "agent_concurrency_reported": concurrency,
            "most_console_pulls_running_at_once": at_once,
        },
    )


def _reported_concurrency():
    """How many pulls at once the agent of local says it runs (its heartbeat's facts)."""
    from orchestrator.models import Gateway
    from orchestrator.models.gateways import LOCAL

    facts = Gateway.objects.filter(name=LOCAL).values_list("facts", flat=True).first() or {}
    return facts.get("concurrency")


def _parallel_cli(bench: Bench, refs: list[str]) -> float:
    errors: list[BaseException] = []

    def pull(ref: str) -> None:
        try:
            bench.cli_pull(ref)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=pull, args=(ref,)) for ref in refs]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if errors:
        raise errors[0]
    return wall


def _parallel_console(
    bench: Bench, consoles: list[Console], refs: list[str], names: _Names
) -> tuple[float, float, int]:
    forms = [console.open_form() for console in consoles]
    fields = [bench.form_fields(ref, names("many")) for ref in refs]
    watches: list[Watch | None] = [None] * len(refs)
    errors: list[BaseException] = []

    def save(i: int) -> None:
        try:
            watches[i] = consoles[i].save(fields[i], forms[i])
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(i,)) for i in range(len(refs))]
    started = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    pending = [w for w in watches if w is not None]
    deadline = time.monotonic() + 900
    while pending:
        if time.monotonic() > deadline:
            raise ConsoleError(f"concurrent pulls did not end: {[w.job_id for w in pending]}")
        for watch in list(pending):
            if not poll_once(watch, consoles[0].job(watch.job_id), time.time()):
                pending.remove(watch)
        time.sleep(POLL_MANY)
    done = [check_succeeded(w) for w in watches if w is not None]
    return max(w.pulled_at for w in done) - started, max(w.finished_at for w in done) - started, _most_at_once(done)


def _most_at_once(watches: list[Watch]) -> int:
    """The most jobs the worker ran at the same time (from their started_at/finished_at)."""
    edges = sorted(
        [(w.server_time("started_at"), 1) for w in watches] + [(w.finished_at, -1) for w in watches],
        key=lambda edge: (edge[0], edge[1]),
    )
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most

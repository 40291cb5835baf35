"""``python -m bench.run [--quick]``: measure the console against ``docker pull`` on the real stack.

Starts the stack of tests/stack, gunicorn and the agent of ``local`` in a fresh
work directory, measures the figures of issue 9 and the fleet figures of the
issue "Gateways" (three more daemons with a gateway and an agent each; a
thousand gateway rows heartbeating), the agent API under a fleet's load
(issue 16: heartbeats and progress batches over HTTP), stops everything, and writes
``<out>/<prefix>.json`` and ``<out>/<prefix>.md``. A full run writes
``bench/results/latest.*`` (committed, quoted by the README); ``--quick`` (a
small image, fewer runs and rows; what the test suite runs) writes
``bench/results/quick-latest.*`` (ignored by git). Exit status 0 when the run
completed, whether or not every target was met; 2 when it could not run.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from .report import REPO, Figure, git_commit, machine_info, write_reports

RESULTS = REPO / "bench" / "results"
GROUPS = {"pulls", "concurrent", "fleet", "gateways", "agentapi", "progress", "status"}


@dataclass
class Config:
    layers: int
    layer_mb: int
    runs: int
    uptodate_runs: int
    concurrent_images: int
    concurrent_layers: int
    concurrent_layer_mb: int
    concurrent_rounds: int
    events: int
    paced_seconds: float
    small_instances: int
    large_instances: int
    status_requests: int
    fleet_gateways: int
    fleet_images: int  # per gateway
    fleet_layers: int
    fleet_layer_mb: int
    fleet_rounds: int
    fleet_idle_seconds: float
    gateways_small: int
    gateways_large: int
    gateway_requests: int
    gateway_instances: int  # per gateway
    gateway_jobs: int  # per instance
    agent_gateways: tuple[int, int]  # small size, full size (the load runs at the full one)
    agent_pulls: tuple[int, int]
    agent_seconds: float  # the load's length, warm-up included
    agent_warmup: float
    agent_processes: int  # load processes


FULL = Config(
    layers=5,
    layer_mb=50,
    runs=5,
    uptodate_runs=5,
    concurrent_images=8,
    concurrent_layers=2,
    concurrent_layer_mb=16,
    concurrent_rounds=3,
    events=100_000,
    paced_seconds=10,
    small_instances=100,
    large_instances=10_000,
    status_requests=200,
    fleet_gateways=3,
    fleet_images=8,
    fleet_layers=2,
    fleet_layer_mb=16,
    fleet_rounds=3,
    fleet_idle_seconds=5,
    gateways_small=10,
    gateways_large=1_000,
    gateway_requests=60,
    gateway_instances=2,
    gateway_jobs=5,
    agent_gateways=(10, 1_000),
    agent_pulls=(1, 100),
    agent_seconds=33,
    agent_warmup=3,
    agent_processes=4,
)
QUICK = Config(
    layers=2,
    layer_mb=4,
    runs=2,
    uptodate_runs=2,
    concurrent_images=8,
    concurrent_layers=1,
    concurrent_layer_mb=2,
    concurrent_rounds=1,
    events=100_000,
    paced_seconds=3,
    small_instances=100,
    large_instances=1_000,
    status_requests=50,
    # The fleet as in the full run (3 x 8 at once, 1,000 gateways), with tiny images and fewer rounds and requests.
    fleet_gateways=3,
    fleet_images=8,
    fleet_layers=1,
    fleet_layer_mb=2,
    fleet_rounds=1,
    fleet_idle_seconds=1,
    gateways_small=10,
    gateways_large=1_000,
    gateway_requests=10,
    gateway_instances=1,
    gateway_jobs=4,
    # A fifth of the agent API's load, for 5 s.
    agent_gateways=(10, 200),
    agent_pulls=(1, 20),
    agent_seconds=6,
    agent_warmup=1,
    agent_processes=2,
)
CONDITIONS = (
    "Everything runs on one machine: the sandboxed dockerd (vfs storage driver: every layer is a full copy on "
    "disk), the registry on loopback, Redis, gunicorn, the agent and this harness; the fleet figures add three "
    "more sandboxed dockerds and their agents. Figures from a shared or busy machine are noisy; compare runs "
    "made under the same conditions."
)


def log(message: str) -> None:
    print(message, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small image, fewer runs and rows (about a minute)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"report directory (default {RESULTS})")
    parser.add_argument("--prefix", help="report file name without extension (default latest / quick-latest)")
    parser.add_argument("--runs", type=int, help="runs of each pull figure (default 5, quick 2)")
    parser.add_argument(
        "--worker-concurrency",
        type=int,
        help="the local agent's -c, for diagnosis (default: none, the agent's default AGENT_CONCURRENCY, 8 threads); "
        "the fleet's agents always run with their defaults",
    )
    parser.add_argument("--work-dir", type=Path, help="where the stack and database live (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs) after the run")
    parser.add_argument(
        "--only",
        default=",".join(sorted(GROUPS)),
        help="comma-separated groups to measure, for diagnosis: pulls (figures 1, 2, 6), concurrent (5), "
        "fleet (3 gateways x 8 images at once, agent memory), gateways (/gateways/ and /gateways.json at 1,000 "
        "gateways), agentapi (the agent API's heartbeats and progress batches under a fleet's load), progress (3), "
        "status (4); the test suite and the committed report use all",
    )
    args = parser.parse_args(argv)

    config = QUICK if args.quick else FULL
    only = {group.strip() for group in args.only.split(",") if group.strip()}
    if not only or only - GROUPS:
        parser.error(f"--only takes some of {', '.join(sorted(GROUPS))}")
    if args.runs:
        config = dataclasses.replace(config, runs=args.runs, uptodate_runs=args.runs)
    prefix = args.prefix or ("quick-latest" if args.quick else "latest")
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-"))
    command = "make bench-quick" if args.quick else "make bench"
    started = time.monotonic()
    failed = False
    try:
        figures, machine = measure(config, work_dir, args.worker_concurrency, only)
    except Exception:  # noqa: BLE001 - report what broke, keep the logs
        traceback.print_exc()
        log(f"benchmark failed; logs kept in {work_dir / 'logs'}")
        failed = True
    finally:
        if not failed and not args.keep and args.work_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)
    if failed:
        return 2
    meta = {
        "mode": "quick" if args.quick else "full",
        "command": command,
        "commit": git_commit(),
        "seconds": round(time.monotonic() - started, 1),
        "conditions": CONDITIONS,
        "groups": sorted(only),
        "worker_concurrency": args.worker_concurrency or "agent default (AGENT_CONCURRENCY)",
    }
    json_path, md_path = write_reports(figures, args.out, prefix, machine, meta)
    log("")
    for figure in figures:
        log(figure.line())
    met = sum(figure.met for figure in figures)
    log(f"\n{met} of {len(figures)} targets met in {meta['seconds']} s; reports: {json_path} {md_path}")
    return 0


def measure(
    config: Config, work_dir: Path, worker_concurrency: int | None, only: set[str] = GROUPS
) -> tuple[list[Figure], dict]:
    from .harness import Bench
    from .pulls import PullConfig, cold_and_uptodate, concurrent

    pull_config = PullConfig(
        layers=config.layers,
        layer_mb=config.layer_mb,
        runs=config.runs,
        uptodate_runs=config.uptodate_runs,
        concurrent_images=config.concurrent_images,
        concurrent_layers=config.concurrent_layers,
        concurrent_layer_mb=config.concurrent_layer_mb,
        concurrent_rounds=config.concurrent_rounds,
    )
    figures: list[Figure] = []
    with Bench(work_dir, worker_concurrency=worker_concurrency, log=log) as bench:
        machine = machine_info(bench.docker_versions())
        if "pulls" in only:
            log("figures 1, 2, 6: cold and up-to-date pulls, first progress")
            figures += cold_and_uptodate(bench, pull_config, log)
        if "concurrent" in only:
            log("figure 5: concurrent pulls")
            figures.append(concurrent(bench, pull_config, log))
        # The rest needs no local agent; stopping it keeps it from taking the rows made below.
        bench.stop_worker()
        from .progress import progress_pipeline
        from .status import status_endpoints

        if "fleet" in only:
            from .fleet import FleetConfig, fleet_figures

            log(f"fleet: {config.fleet_gateways} gateways x {config.fleet_images} images at once, agent memory")
            fleet_config = FleetConfig(
                gateways=config.fleet_gateways,
                images=config.fleet_images,
                layers=config.fleet_layers,
                layer_mb=config.fleet_layer_mb,
                rounds=config.fleet_rounds,
                idle_seconds=config.fleet_idle_seconds,
            )
            figures += fleet_figures(bench, fleet_config, log)
        if "gateways" in only:
            from .gateway_pages import gateway_pages

            log(f"gateways: /gateways/ and /gateways.json at {config.gateways_large:,} gateways heartbeating")
            figures += gateway_pages(
                bench,
                config.gateways_small,
                config.gateways_large,
                config.gateway_requests,
                config.gateway_instances,
                config.gateway_jobs,
                log,
            )
        if "agentapi" in only:
            from .agent_api import agent_api

            log(
                f"agent API: {config.agent_gateways[1]:,} gateways heartbeating, {config.agent_pulls[1]} pulls "
                "reporting progress"
            )
            figures += agent_api(
                bench,
                config.agent_gateways,
                config.agent_pulls,
                config.agent_seconds,
                config.agent_warmup,
                config.agent_processes,
                log,
            )
        if "progress" in only:
            log("figure 3: progress pipeline")
            figures += progress_pipeline(config.events, config.paced_seconds, log)
        if "status" in only:
            log("figure 4: status endpoints at scale")
            figures += status_endpoints(
                bench, config.small_instances, config.large_instances, config.status_requests, log
            )
    order = [
        "pull_overhead_ratio",
        "uptodate_pull_ratio",
        "uptodate_pull_extra_ms",
        "progress_events_per_s",
        "progress_writes_per_job_s",
        "status_json_p95_ms",
        "instance_list_p95_ms",
        "status_json_queries",
        "instance_list_queries",
        "concurrent_pull_ratio",
        "first_progress_ms",
        "fleet_pull_ratio",
        "agent_rss_peak_mb",
        "gateway_list_p95_ms",
        "gateway_json_p95_ms",
        "gateway_list_queries",
        "gateway_json_queries",
        "agent_progress_p95_ms",
        "agent_heartbeat_p95_ms",
        "agent_load_sent_ratio",
        "agent_progress_queries",
        "agent_heartbeat_queries",
    ]
    figures.sort(key=lambda f: order.index(f.name) if f.name in order else len(order))
    return figures, machine


if __name__ == "__main__":
    sys.exit(main())

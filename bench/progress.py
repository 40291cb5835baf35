"""Figure 3: the progress pipeline, from the daemon's event stream to throttled writes on the job row.

The stream is the one recorded from dockerd 20.10 (tests/unit/streams), stretched
to ``events`` events: every event that carries ``current/total`` becomes a run
of events whose ``current`` climbs to the recorded value, in the recorded order,
so the shape (layers, interleaving, statuses) is the real one.

It goes through the agent's own code: :func:`orchestrator.pulls.attempt.pull_once`
(which folds each event with :class:`orchestrator.pulls.progress.ProgressFolder` and
hands a snapshot to ``on_progress``, and runs the deadline/cancel watchdog) with
:class:`orchestrator.pulls.runner.JobWriter` (throttled by the link at ``settings.PULL_PROGRESS_WRITE_INTERVAL``)
and :class:`orchestrator.pulls.link.Link`, through the agent API (served by threads of
the bench's own process) onto a real job row in the SQLite database. Only the daemon is replaced: a client
that answers ``POST /images/create`` with the recorded stream. Every INSERT,
UPDATE or DELETE any thread sends to the database is counted.

Two passes: flat out (events per second: what the pipeline can fold), and paced
over ``paced_seconds`` like a long pull (database writes per job-second: what the
throttle lets through; a flat-out pass of under a second would mostly measure
the first and the last write).
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .report import REPO, Figure

RECORDED = REPO / "tests" / "unit" / "streams" / "recorded-dockerd-20.10-4-layers.jsonl"
REFERENCE = "127.0.0.1:5000/bench/replay:1"


def stretched_stream(events: int, recorded: Path = RECORDED) -> list[dict[str, Any]]:
    """The recorded stream with its progress events multiplied up to exactly ``events`` events."""
    base = [json.loads(line) for line in recorded.read_text().splitlines() if line.strip()]
    moving = [i for i, e in enumerate(base) if isinstance((e.get("progressDetail") or {}).get("current"), int)]
    extra = events - len(base)
    if extra < 0 or not moving:
        raise ValueError(f"cannot stretch {len(base)} recorded events to {events}")
    share, rest = divmod(extra, len(moving))
    copies = {index: 1 + share + (1 if n < rest else 0) for n, index in enumerate(moving)}
    last: dict[tuple[str, str], int] = {}
    out: list[dict[str, Any]] = []
    for index, event in enumerate(base):
        if index not in copies:
            out.append(event)
            continue
        detail = event["progressDetail"]
        key = (event["id"], event["status"])
        start, end, k = last.get(key, 0), detail["current"], copies[index]
        for step in range(1, k + 1):
            current = start + (end - start) * step // k
            out.append({**event, "progressDetail": {"current": current, "total": detail["total"]}})
        last[key] = end
    assert len(out) == events
    return out


class _Response:
    raw = None
    status_code = 200

    def close(self) -> None:
        pass


class ReplayDaemon:
    """Answers pull_once's Engine API calls with a recorded stream (optionally paced) instead of a daemon."""

    def __init__(self, events: list[dict[str, Any]], paced_seconds: float | None = None) -> None:
        self.events = events
        self.paced_seconds = paced_seconds

    def _url(self, path: str) -> str:
        return path

    def _post(self, url: str, **kwargs: Any) -> _Response:
        return _Response()

    def _raise_for_status(self, response: _Response) -> None:
        pass

    def _get(self, url: str, **kwargs: Any) -> _Response:
        # pull_once pings the daemon when a stream ends oddly; the replay's "daemon" always answers.
        return _Response()

    def _stream_helper(self, response: _Response, decode: bool = True):
        if not self.paced_seconds:
            yield from self.events
            return
        started, count, step = time.monotonic(), len(self.events), 500
        for index, event in enumerate(self.events):
            if index % step == 0:
                delay = started + self.paced_seconds * index / count - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            yield event

    def inspect_image(self, reference: str) -> dict[str, Any]:
        return {
            "Os": "linux",
            "Architecture": "amd64",
            "RepoDigests": [f"{reference.rsplit(':', 1)[0]}@sha256:{'0' * 64}"],
        }


class WriteCounter:
    """Counts INSERT/UPDATE/DELETE statements from every thread's database connection."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()
        self.active = False

    def __call__(self, execute, sql, params, many, context):
        if self.active and sql.lstrip()[:6].upper() in {"INSERT", "UPDATE", "DELETE"}:
            with self.lock:
                self.count += 1
        return execute(sql, params, many, context)

    def install(self) -> None:
        from django.db import connection
        from django.db.backends.signals import connection_created

        def add(sender, connection, **kwargs) -> None:
            if self not in connection.execute_wrappers:
                connection.execute_wrappers.append(self)

        self._receiver = add  # the signal keeps a weak reference
        connection_created.connect(add, weak=False, dispatch_uid="bench-write-counter")
        if self not in connection.execute_wrappers:
            connection.execute_wrappers.append(self)


class RequestCounter:
    """Counts the agent API requests the replay sends (the claim, events batches, reads)."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def wrap(self, console) -> None:
        call = console._call

        def counted(*args, **kwargs):
            with self.lock:
                self.count += 1
            return call(*args, **kwargs)

        console._call = counted


def _replay(
    events: list[dict[str, Any]], counter: WriteCounter, paced_seconds: float | None, base_url: str
) -> dict[str, Any]:
    """One job through the agent's pull path, as ``orchestrator.pulls.runner`` drives it: claimed, reported and
    ended through the agent API at ``base_url``."""

    from orchestrator.agent import client
    from orchestrator.gateways.actions import ensure_local, rotate_token
    from orchestrator.models import ContainerInstance, PullJob
    from orchestrator.pulls.attempt import pull_once
    from orchestrator.pulls.holders import holder_token
    from orchestrator.pulls.link import Link
    from orchestrator.pulls.runner import JobWriter, claim

    gateway = ensure_local()
    console = client.Console(base_url, rotate_token(gateway.name))
    client._console = console
    requests = RequestCounter()
    requests.wrap(console)
    instance = ContainerInstance.objects.create(
        name=f"replay-{time.monotonic_ns()}", image_name=REFERENCE.rsplit(":", 1)[0], image_tag="1", gateway=gateway
    )
    job = PullJob.objects.create(instance=instance, reference=REFERENCE, dispatched_at=None)
    counter.count, counter.active = 0, True
    started = time.perf_counter()
    holder = holder_token("bench-replay")
    order = claim(job.pk, holder)
    if order is None:
        raise RuntimeError(f"could not claim the replay job {job.pk}")
    link = Link(job.pk, holder)
    link.start()  # the link's thread: its beats and progress batches count too
    try:
        link.step("begin_attempt", number=order["attempt"])
        writer = JobWriter(link)
        outcome = pull_once(
            ReplayDaemon(events, paced_seconds),
            REFERENCE,
            auth_config=None,
            deadline=time.monotonic() + 3600,
            on_progress=writer.progress,
            should_cancel=link.cancel_requested,
            docker_host="replay",
        )
        writer.progress(outcome.snapshot, force=True)  # as the runner does when the stream ends
        link.step("pulled", digest="", platform="", up_to_date=False)
        elapsed = time.perf_counter() - started
        counter.active = False
        link.step("finish", state=PullJob.State.SUCCEEDED)
    finally:
        counter.active = False
        link.stop()
        client._console = None
    row = PullJob.objects.get(pk=job.pk)
    if row.progress != 100 or row.layers_done != row.layers_total or not row.layers:
        raise RuntimeError(f"the replay did not fold to a finished pull: {row.as_json()}")
    return {
        "elapsed_s": elapsed,
        "writes": counter.count,
        "progress_writes": writer.writes,
        "api_requests": requests.count,
    }


def _fold_rates(stream: list[dict[str, Any]]) -> dict[str, int]:
    """Where the time goes: folding alone, and folding plus a snapshot per event (no database)."""
    from orchestrator.pulls.progress import ProgressFolder

    folder = ProgressFolder()
    started = time.perf_counter()
    for event in stream:
        folder.feed(event)
    fold = time.perf_counter() - started
    folder = ProgressFolder()
    started = time.perf_counter()
    for event in stream:
        folder.feed(event)
        folder.snapshot()
    both = time.perf_counter() - started
    return {
        "feed_only_events_per_s": round(len(stream) / fold),
        "feed_and_snapshot_events_per_s": round(len(stream) / both),
    }


@contextmanager
def _console_in_this_process():
    """The console's agent API on a free port, served by threads of this process: the write counter sees the
    statements its requests send, as it saw the runner's own when the runner wrote the row itself."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = ThreadedWSGIServer(("127.0.0.1", 0), Quiet, allow_reuse_address=False)
    server.set_app(WSGIHandler())
    thread = threading.Thread(target=server.serve_forever, name="bench-console", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def progress_pipeline(events: int, paced_seconds: float, log) -> list[Figure]:
    from django.conf import settings

    stream = stretched_stream(events)
    rates = _fold_rates(stream)
    counter = WriteCounter()
    counter.install()
    with _console_in_this_process() as base_url:
        flat = _replay(stream, counter, None, base_url)
        log(f"  flat out: {events} events in {flat['elapsed_s']:.3f} s, {flat['writes']} writes")
        paced = _replay(stream, counter, paced_seconds, base_url)
    log(f"  paced over {paced_seconds} s: {paced['writes']} writes in {paced['elapsed_s']:.2f} s")
    interval = settings.PULL_PROGRESS_WRITE_INTERVAL
    common = {
        "events": events,
        "layers": len({e["id"] for e in stream if "id" in e and e.get("progressDetail") is not None}),
        "write_interval_s": interval,
    }
    return [
        Figure(
            name="progress_events_per_s",
            title="Progress events folded per second",
            value=round(events / flat["elapsed_s"]),
            unit="events/s",
            op=">=",
            limit=200_000,
            note="The recorded dockerd 20.10 stream stretched to the event count, through pull_once + ProgressFolder "
            "+ JobWriter on a real job row, as fast as it goes.",
            detail={
                **common,
                **rates,
                "elapsed_s": round(flat["elapsed_s"], 4),
                "db_writes": flat["writes"],
                "db_writes_per_s_flat_out": round(flat["writes"] / flat["elapsed_s"], 2),
            },
        ),
        Figure(
            name="progress_writes_per_job_s",
            title="Database writes per job-second",
            value=round(paced["writes"] / paced["elapsed_s"], 2),
            unit="writes/s",
            op="<=",
            limit=5,
            note=f"The same stream paced over {paced_seconds:g} s ({events / paced_seconds:,.0f} events/s), through "
            "the agent API (served in the bench's process, so its writes are counted); every write statement "
            "counted, between the claim and the last progress write: the claim, the attempt entry, progress "
            "batches, the link's beats.",
            detail={
                **common,
                "elapsed_s": round(paced["elapsed_s"], 3),
                "db_writes": paced["writes"],
                "progress_writes": paced["progress_writes"],
                "api_requests": paced["api_requests"],
                "api_requests_per_s": round(paced["api_requests"] / paced["elapsed_s"], 2),
            },
        ),
    ]

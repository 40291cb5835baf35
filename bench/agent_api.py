"""The agent API under a fleet's load: heartbeats and progress event batches over HTTP, latency and queries.

Gateways are made with :func:`orchestrator.gateways.actions.add_gateway` (each with its own token), and some of
them get an instance with a pull job (rows made directly, queued and already sent; two pulls to a gateway).
Every job is then claimed through the API itself (``POST /agent/v1/jobs/<id>/claim`` with a holder string, then
a ``begin_attempt`` event), so the fence the progress writes go through is a real claim.

The load runs over HTTP against the harness's gunicorn (as deployed; SQLite) from a few spawned processes, so
that one client's GIL does not add to the latencies it measures (a ``requests.Session`` per thread):

* every gateway beats once per ``GATEWAY_HEARTBEAT_SECONDS`` (15 s), the beats spread evenly (1,000 gateways:
  67 a second), each ``POST /agent/v1/heartbeat`` in a thread of its own (agents do not wait for each other)
  with its gateway's token and the facts an agent reports (the stack daemon's ``daemon_facts``, varied);
* every pull sends a batch of one ``progress`` event (six layers, climbing) every
  ``PULL_PROGRESS_WRITE_INTERVAL`` (0.25 s: 4 a second), as the agent's throttled writer does: one request at
  a time per pull, the next due an interval after the previous one was due, or at once if that one took longer.

Latency is from a request's send to its answer; the first ``warmup`` seconds are not counted; the rates are
the requests sent in the counted window (their shortfall is a figure); the CPU time of gunicorn and of the
load processes is noted. In this process (Django's test client, ``CaptureQueriesContext``): the SQL queries
of one heartbeat and one progress batch at a small and the full size, which must not grow.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import threading
import time
from pathlib import Path

import requests

from .report import Figure, median, percentile

PREFIX = "agentload-"
HEARTBEAT_SECONDS = 15.0  # GATEWAY_HEARTBEAT_SECONDS' default, as deployed
API = "/agent/v1"
LAYERS, LAYER_BYTES = 6, 52_428_800
TIMEOUT = 30.0
WAITING = "Waiting for a worker"  # pulls.actions.WAITING_FOR_WORKER


def progress_event(step: int) -> dict:
    """The ``progress`` event of a pull's ``step``-th write: six layers of 50 MiB filling one after another."""
    total = LAYERS * LAYER_BYTES
    done = (step * 786_432) % total
    layers = []
    for i in range(LAYERS):
        current = min(LAYER_BYTES, max(0, done - i * LAYER_BYTES))
        status = "Pull complete" if current == LAYER_BYTES else ("Downloading" if current else "Waiting")
        layers.append({"id": f"{0xA1 + i:012x}", "status": status, "current": current or None, "total": LAYER_BYTES})
    complete = sum(layer["status"] == "Pull complete" for layer in layers)
    return {
        "type": "progress",
        "progress": done * 100 // total,
        "bytes_done": done,
        "bytes_total": total,
        "layers_done": complete,
        "layers_total": LAYERS,
        "layers": layers,
        "message": f"{layers[min(complete, LAYERS - 1)]['id']}: Downloading",
    }


def beat_body(base_facts: dict, n: int) -> dict:
    facts = dict(base_facts, containers_running=n % 7)
    if isinstance(facts.get("free_bytes"), int):
        facts["free_bytes"] = max(0, facts["free_bytes"] - (n % 100) * 1_048_576)
    return {"facts": facts}


# --------------------------------------------------------------------------------------------- rows


def add_gateways(have: list[tuple[str, str]], total: int) -> None:
    """Gateways (name, token) until there are ``total``, made as ``manage.py gateway add`` makes them."""
    from django.db import transaction

    from orchestrator.gateways.actions import add_gateway

    with transaction.atomic():
        for n in range(len(have), total):
            gateway, token = add_gateway(f"{PREFIX}{n:05d}")
            have.append((gateway.name, token))


def add_pulls(base_url: str, gateways: list[tuple[str, str]], pulls: list[dict], total: int) -> None:
    """Instances with a running pull, two to a gateway, until there are ``total``, each claimed over HTTP."""
    from django.utils import timezone

    from orchestrator.models import ContainerInstance, Gateway, PullJob

    session = requests.Session()
    try:
        for i in range(len(pulls), total):
            name, token = gateways[((i // 2) * 2 * len(gateways)) // total]
            instance = ContainerInstance.objects.create(
                gateway=Gateway.objects.get(name=name), name=f"app-{i}", image_name="registry.example:5000/team/app"
            )
            # As queue_pull makes it, already sent (the bench publishes no task: nothing consumes these queues).
            job = PullJob.objects.create(
                instance=instance, reference=instance.pull_reference, message=WAITING, dispatched_at=timezone.now()
            )
            holder = f"agent@{name} pid {1000 + i} on bench/4026531836 #{i:06x}"
            headers = {"Authorization": f"Bearer {token}"}
            url = f"{base_url}{API}/jobs/{job.pk}"
            order = session.post(f"{url}/claim", json={"holder": holder}, headers=headers, timeout=TIMEOUT)
            if order.status_code != 200:
                raise RuntimeError(f"claim of job {job.pk}: HTTP {order.status_code} {order.text[:300]}")
            begin = {"holder": holder, "events": [{"type": "begin_attempt", "number": order.json()["attempt"]}]}
            began = session.post(f"{url}/events", json=begin, headers=headers, timeout=TIMEOUT)
            if began.status_code != 200 or began.json().get("applied") != 1:
                raise RuntimeError(f"begin_attempt of job {job.pk}: HTTP {began.status_code} {began.text[:300]}")
            pulls.append({"job": job.pk, "token": token, "holder": holder, "gateway": name})
    finally:
        session.close()


def remove_rows() -> None:
    """Delete what this module made, so the figures measured after it see the database as before."""
    from orchestrator.models import ContainerInstance, Gateway, PullJob

    PullJob.objects.filter(instance__gateway__name__startswith=PREFIX).delete()
    ContainerInstance.objects.filter(gateway__name__startswith=PREFIX).delete()
    Gateway.objects.filter(name__startswith=PREFIX).delete()


def queries_per_request(token: str, path: str, body: dict) -> int:
    """SQL queries of one ``POST path`` in this process (Django's test client), after one to warm up."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    data = json.dumps(body)
    client.post(path, data, content_type="application/json")
    with CaptureQueriesContext(connection) as captured:
        response = client.post(path, data, content_type="application/json")
    if response.status_code != 200:
        raise RuntimeError(f"POST {path} in process: HTTP {response.status_code} {response.content[:300]!r}")
    return len(captured.captured_queries)


def _queries(gateways: list[tuple[str, str]], pulls: list[dict], base_facts: dict) -> dict:
    pull = pulls[-1]
    token = next(token for name, token in gateways if name == pull["gateway"])
    events = {"holder": pull["holder"], "events": [progress_event(1)]}
    return {
        "gateways": len(gateways),
        "pulls": len(pulls),
        "heartbeat_queries": queries_per_request(token, f"{API}/heartbeat", beat_body(base_facts, 0)),
        "progress_queries": queries_per_request(pull["token"], f"{API}/jobs/{pull['job']}/events", events),
    }


# --------------------------------------------------------------------------------------------- the load


def cpu_seconds(web: int) -> tuple[float, float, float]:
    """CPU seconds of gunicorn (master ``web`` and workers), of this process's joined children; the time."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split() if entry.name.isdigit() else []
        except OSError:
            continue
        if fields and web in (int(entry.name), int(fields[1])):
            total += (int(fields[11]) + int(fields[12])) / tick
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return total, children.ru_utime + children.ru_stime, time.monotonic()


def _send(session: requests.Session, url: str, body: dict, headers: dict, good) -> tuple[float, str]:
    """POST, then (milliseconds from send to answer, "" or what was wrong)."""
    sent = time.perf_counter()
    try:
        answer = session.post(url, json=body, headers=headers, timeout=TIMEOUT)
        elapsed = (time.perf_counter() - sent) * 1000
        if answer.status_code != 200:
            return elapsed, f"HTTP {answer.status_code}"
        return elapsed, "" if good(answer.json()) else answer.text[:200]
    except (requests.RequestException, ValueError) as error:
        return (time.perf_counter() - sent) * 1000, type(error).__name__


def load_slice(spec: dict, ready, go, start_at, results) -> None:
    """One load process: a thread per pull, and one per heartbeat of its gateways."""
    seconds, interval, base = spec["seconds"], spec["interval"], spec["base_url"]
    samples: list[tuple] = []  # (kind, sent (s after start), ms, lateness ms, problem)
    lock = threading.Lock()
    ready.wait()
    go.wait()
    start = start_at.value
    stop = start + seconds

    def record(kind: str, due: float, sent: float, ms: float, problem: str) -> None:
        with lock:
            samples.append((kind, sent - start, ms, (sent - due) * 1000, problem))

    def pull_loop(pull: dict, offset: float) -> None:
        session, url = requests.Session(), f"{base}{API}/jobs/{pull['job']}/events"
        headers = {"Authorization": f"Bearer {pull['token']}"}
        due, step = start + offset, 0
        while due < stop:
            time.sleep(max(0.0, due - time.monotonic()))
            sent = time.monotonic()
            body = {"holder": pull["holder"], "events": [progress_event(step)]}
            ms, problem = _send(session, url, body, headers, lambda a: a.get("applied") == 1 and not a.get("lost"))
            record("progress", due, sent, ms, problem)
            # The writer's throttle: the next write an interval on, or at once when this one took longer.
            step, due = step + 1, max(due + interval, time.monotonic())
        session.close()

    def beat(due: float, n: int, token: str) -> None:
        sent, session = time.monotonic(), requests.Session()
        headers = {"Authorization": f"Bearer {token}"}
        body = beat_body(spec["facts"], n)
        ms, problem = _send(session, f"{base}{API}/heartbeat", body, headers, lambda a: a.get("ok") is True)
        record("heartbeat", due, sent, ms, problem)
        session.close()

    threads = [threading.Thread(target=pull_loop, args=(p, offset)) for p, offset in spec["pulls"]]
    for thread in threads:
        thread.start()
    beats = sorted(
        (start + (index / spec["gateways_total"] + k) * HEARTBEAT_SECONDS, index, token)
        for index, token in spec["gateways"]
        for k in range(int(seconds // HEARTBEAT_SECONDS) + 1)
    )
    # The agents beat independently of each other and of the answers: a thread for each beat, started when due.
    for due, n, token in (b for b in beats if b[0] < stop):
        time.sleep(max(0.0, due - time.monotonic()))
        threads.append(threading.Thread(target=beat, args=(due, n, token)))
        threads[-1].start()
    for thread in threads:
        thread.join()
    results.put(samples)


def run_load(base_url, gateways, pulls, base_facts, seconds: float, processes: int, interval: float) -> list:
    """Every gateway's beats and pull's writes for ``seconds``, spread over ``processes``; all their samples."""
    ctx = multiprocessing.get_context("spawn")
    ready, go, start_at, results = ctx.Barrier(processes + 1), ctx.Event(), ctx.Value("d", 0.0), ctx.Queue()
    common = {"base_url": base_url, "seconds": seconds, "interval": interval, "facts": base_facts}
    specs = [
        {
            **common,
            "gateways_total": len(gateways),
            "gateways": [(i, token) for i, (_, token) in enumerate(gateways) if i % processes == p],
            # Each pull's first write offset within the interval, so the writes do not all come at once.
            "pulls": [(pull, interval * i / len(pulls)) for i, pull in enumerate(pulls) if i % processes == p],
        }
        for p in range(processes)
    ]
    workers, samples = [], []
    try:
        for spec in specs:
            workers.append(ctx.Process(target=load_slice, args=(spec, ready, go, start_at, results), daemon=True))
            workers[-1].start()
        ready.wait(timeout=120)  # every process started and about to make its threads
        start_at.value = time.monotonic() + 0.5
        go.set()
        for _ in workers:
            samples += results.get(timeout=seconds + 4 * TIMEOUT)
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.terminate()
    return samples


def _summary(samples: list, kind: str, warmup: float, seconds: float, wanted: float) -> dict:
    counted = [s for s in samples if s[0] == kind and warmup <= s[1] < seconds]
    if not counted:
        raise RuntimeError(f"no {kind} request was sent in the counted window")
    ms, late = [s[2] for s in counted], [max(0.0, s[3]) for s in counted]
    problems = [s[4] for s in counted if s[4]]
    window = seconds - warmup
    return {
        "requests": len(counted),
        "per_s_wanted": round(wanted, 1),
        "per_s_sent": round(len(counted) / window, 1),
        "p50_ms": round(median(ms), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms), 1),
        "send_late_p95_ms": round(percentile(late, 95), 1),
        "errors": len(problems),
        "first_errors": sorted(set(problems))[:3],
    }


# --------------------------------------------------------------------------------------------- the figures


def agent_api(bench, gateways_at: tuple[int, int], pulls_at: tuple[int, int], seconds, warmup, processes, log):
    """``gateways_at``, ``pulls_at``: the small size and the full one (the load runs at the full one)."""
    from django.conf import settings

    from .gateway_pages import agent_facts

    (small_gateways, gateways_n), (small_pulls, pulls_n) = gateways_at, pulls_at
    began = time.monotonic()
    # From a settled disk, as the pull figures start: the groups before leave up to gigabytes of layers to write.
    os.sync()
    log(f"  disk synced in {time.monotonic() - began:.1f} s")
    facts = agent_facts(bench.info.docker_host)
    interval = settings.PULL_PROGRESS_WRITE_INTERVAL
    gateways: list[tuple[str, str]] = []
    pulls: list[dict] = []
    try:
        add_gateways(gateways, small_gateways)
        add_pulls(bench.base_url, gateways, pulls, small_pulls)
        low = _queries(gateways, pulls, facts)
        log(f"  {low}")
        add_gateways(gateways, gateways_n)
        add_pulls(bench.base_url, gateways, pulls, pulls_n)
        high = _queries(gateways, pulls, facts)
        log(f"  {high}; rows made and claimed in {time.monotonic() - began:.1f} s")
        web = int((bench.state_dir / "pids" / "web.pid").read_text().split()[0])
        before = cpu_seconds(web)
        samples = run_load(bench.base_url, gateways, pulls, facts, seconds, processes, interval)
        cpu = [now - then for now, then in zip(cpu_seconds(web), before, strict=True)]
    finally:
        remove_rows()
    beats = _summary(samples, "heartbeat", warmup, seconds, gateways_n / HEARTBEAT_SECONDS)
    progress = _summary(samples, "progress", warmup, seconds, pulls_n / interval)
    log(f"  heartbeats: {beats}")
    log(f"  progress:   {progress}")
    log(f"  agent API figures in {time.monotonic() - began:.1f} s")
    served = sum(1 for sample in samples if not sample[4])
    load = {
        "seconds": seconds - warmup,
        "warmup_s": warmup,
        "client_processes": processes,
        "interval_s": interval,
        # Where the machine's CPUs went during the whole load (warm-up included).
        "web_cpu_cores": round(cpu[0] / cpu[2], 2),
        "web_cpu_ms_per_request": round(cpu[0] * 1000 / max(1, served), 2),
        "client_cpu_cores": round(cpu[1] / cpu[2], 2),
        "cpus": os.cpu_count(),
    }
    log(f"  load: {load}")
    return _figures(low, high, beats, progress, load)


def _figures(low: dict, high: dict, beats: dict, progress: dict, load: dict) -> list[Figure]:
    sent = beats["per_s_sent"] + progress["per_s_sent"]
    wanted = beats["per_s_wanted"] + progress["per_s_wanted"]
    common = (
        f"Over HTTP through gunicorn (as deployed), SQLite: {high['gateways']:,} gateways each beating every "
        f"{HEARTBEAT_SECONDS:.0f} s ({beats['per_s_sent']} of {beats['per_s_wanted']} beats/s sent) while "
        f"{high['pulls']} claimed pulls each send a progress batch every {load['interval_s']} s "
        f"({progress['per_s_sent']} of {progress['per_s_wanted']} batches/s sent), from "
        f"{load['client_processes']} client processes, for {load['seconds']:.0f} s after {load['warmup_s']:.0f} s "
        "of warm-up. Latency from send to answer. 50 ms is the issue's target."
    )
    no_growth = f"Must not grow: the target is the count at {low['gateways']} gateways / {low['pulls']} pull(s)."
    loaded = f"{high['pulls']} pulls reporting progress + {high['gateways']:,} gateways beating"
    sweeps = " Each beat also sweeps its gateway's jobs."
    kinds = (("progress", "progress batch", progress, ""), ("heartbeat", "heartbeat", beats, sweeps))
    latency = [
        Figure(
            f"agent_{kind}_p95_ms", got["p95_ms"], "ms", "<=", 50, f"Agent API {what} p95, {loaded}", got, common + also
        )
        for kind, what, got, also in kinds
    ]
    queries = [
        Figure(
            f"agent_{kind}_queries",
            high[f"{kind}_queries"],
            "queries",
            "<=",
            low[f"{kind}_queries"],
            f"SQL queries per agent API {what}",
            {"small": low[f"{kind}_queries"], "large": high[f"{kind}_queries"]},
            no_growth,
        )
        for kind, what, _, _ in kinds
    ]
    ratio = Figure(
        name="agent_load_sent_ratio",
        title="Agent API requests sent / wanted (heartbeats + progress)",
        value=round(sent / wanted, 3) if wanted else 0.0,
        unit="ratio",
        op=">=",
        limit=0.95,
        note="Whether the latencies above were measured under the whole load: each pull waits for its answer "
        "before its next write (as the agent's writer does), so a slow console gets fewer requests.",
        detail={"sent_per_s": round(sent, 1), "wanted_per_s": round(wanted, 1), **load},
    )
    return [*latency, ratio, *queries]

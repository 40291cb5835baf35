"""Bad days, injected for real: killed workers, Redis and dockerd restarts, a registry that goes away,
cut connections, Docker Hub's 429, slow downloads, double clicks and cancels.

Every test ends with the job's final state, its error code, its attempt count
and history, and with no job left queued or running. Services a test stops are
started again in ``finally``. The shared session worker runs with
GATEWAY_HEARTBEAT_SECONDS=2 (each beat sweeps its gateway's jobs) and PULL_STALE_AFTER_SECONDS=15
(tests/conftest.py).
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from datetime import datetime

import pytest
from celery import current_app
from django.db import connection
from django.test import Client
from django.urls import reverse

from orchestrator.models import ContainerInstance, Gateway, PullJob
from orchestrator.models.gateways import unacked_keys
from orchestrator.pulls.actions import PULL_TASK, queue_pull
from tests.conftest import start_worker, stop_worker
from tests.stack import (
    push_random_image,
    start_dockerd,
    start_redis,
    start_registry,
    stop_dockerd,
    stop_redis,
    stop_registry,
)

from .faults_tools import FakeRegistry, TcpProxy
from .helpers import docker_client, form_data, image_present, make_instance, wait_for_job

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.django_db(transaction=True)]

MIB = 1024 * 1024
# How the console's 409 to a second claim begins (agentapi/jobs.py); the agent logs it whole.
REFUSED = "The job was not claimed:"
BIG_REPO = "faults/big"
BIG_TAG = "v1"


# --- helpers -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_image(stack) -> str:
    """busybox plus three random 8 MiB layers in the stack's registry; returns 'faults/big:v1'."""
    push_random_image(stack, BIG_REPO, BIG_TAG, layers=3, layer_mb=8)
    return f"{BIG_REPO}:{BIG_TAG}"


@pytest.fixture
def proxy(stack, big_image):
    """A proxy in front of the registry; the big image is forgotten by the daemon first."""
    forget_big_image(stack)
    with TcpProxy(stack.registry) as running:
        yield running


def forget_big_image(stack) -> None:
    """Remove every tag of the big image (it is pulled under several proxy addresses), layers included."""
    client = docker_client(stack)
    try:
        for image in client.images.list():
            if any(f"/{BIG_REPO}:" in tag for tag in image.tags):
                client.images.remove(image.id, force=True)
    finally:
        client.close()


def gateway(name: str) -> Gateway:
    """A gateway of the fault tests' own, so only the agents a test starts for it take its jobs."""
    return Gateway.objects.get_or_create(name=name)[0]


def through(proxy: TcpProxy, stack, **fields) -> ContainerInstance:
    """An instance that pulls the big image through ``proxy`` (disabled: no container phase)."""
    values = dict(
        name=f"faults-{time.monotonic_ns()}",
        enabled=False,
        image_name=f"{proxy.address}/{BIG_REPO}",
        image_tag=BIG_TAG,
        registry_url=proxy.address,
        registry_username=stack.registry_username,
        registry_password=stack.registry_password,
        download_retries=2,
        download_retry_interval=300,
        download_timeout=120,
    )
    values.update(fields)
    return ContainerInstance.objects.create(**values)


def wait_until(condition, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def row(job_id: int) -> PullJob:
    return PullJob.objects.select_related("instance").get(pk=job_id)


def downloading(job_id: int) -> PullJob | None:
    job = row(job_id)
    assert job.state in PullJob.ACTIVE_STATES, job.as_json()
    return job if job.state == PullJob.State.RUNNING and job.bytes_done > 0 else None


def when(value: str | None) -> datetime:
    assert value, "missing timestamp"
    return datetime.fromisoformat(value)


def assert_nothing_left_active() -> None:
    left = list(PullJob.objects.filter(state__in=PullJob.ACTIVE_STATES).values("pk", "state", "message"))
    assert not left, f"jobs left queued or running: {left}"


def wait_for_log(worker, text: str, timeout: float) -> None:
    wait_until(lambda: text in worker.log(), timeout, f"{text!r} in {worker.log_path}")


def restore_unacked(redis_url: str, gateway_name: str) -> None:
    """Make Redis hand out again every message of the gateway no worker acknowledged, as after the visibility
    timeout.

    This is kombu's own restore (what an agent runs once a message is older
    than its visibility_timeout), with a timeout of 0: the test need not wait hours.
    """
    from kombu import Connection

    options = {"visibility_timeout": 0, **unacked_keys(gateway_name)}
    with Connection(redis_url, transport_options=options) as conn:
        conn.default_channel.qos.restore_visible(num=100)


# --- the worker dies -----------------------------------------------------------------


def test_a_killed_worker_s_pull_is_requeued_and_finished_by_another_worker(
    stack, worker, worker_env, proxy, settings, tmp_path
):
    victim = start_worker(worker_env, tmp_path / "victim.log", "victim", gateway="faults-victim")
    late = None
    try:
        # Only the victim is the agent of this gateway, so it is the one that starts the pull.
        proxy.rate = 1 * MIB
        job, _ = queue_pull(through(proxy, stack, download_retries=2, gateway=gateway("faults-victim")))
        job = wait_until(lambda: downloading(job.pk), 30, "the victim to download")
        assert job.worker.startswith("victim@"), job.worker

        os.killpg(victim.process.pid, signal.SIGKILL)
        victim.process.wait(timeout=10)
        killed = time.monotonic()
        # The daemon drops a pull whose client is gone: nothing keeps downloading for a dead worker.
        assert proxy.wait_idle(15), f"{proxy.active} connections still open after the kill"
        assert row(job.pk).state == "running"  # nobody can know yet; the heartbeat tells

        # Another agent of the victim's gateway, to receive the victim's unacknowledged message later.
        late = start_worker(worker_env, tmp_path / "late.log", "late", gateway="faults-victim")

        # The console's sweeper (on each heartbeat of the gateway): no job heartbeat for PULL_STALE_AFTER_SECONDS
        # -> requeued, sent, taken.
        job = wait_until(
            lambda: (j := row(job.pk)).state == "running" and len(j.attempts) == 2 and j,
            45,
            "the sweeper to requeue the job and another worker to take it",
        )
        requeued_after = time.monotonic() - killed
        assert 8 < requeued_after < 35, requeued_after
        assert job.worker and not job.worker.startswith("victim@")

        # Now the killed worker's message comes back (Redis's visibility timeout): the claim must refuse it.
        restore_unacked(stack.redis_url, "faults-victim")
        refused = f"pull job {job.pk}: delivery refused (not_claimable): {REFUSED} it is running, held by {job.worker}"
        wait_for_log(late, refused, 30)

        proxy.rate = None
        job = wait_for_job(job.pk, timeout=90)
    finally:
        stop_worker(victim, signal.SIGKILL)
        if late is not None:
            stop_worker(late)

    assert job.state == "succeeded", job.as_json()
    assert job.error_code == ""
    assert job.attempt == 2
    first, second = job.attempts
    assert first["outcome"] == "interrupted" and first["code"] == "interrupted"
    assert first["worker"].startswith("victim@")
    assert "no heartbeat" in first["message"]
    assert second["outcome"] == "succeeded" and not second["worker"].startswith("victim@")
    # One pull at a time: the second attempt started after the first was declared dead.
    assert when(second["started_at"]) >= when(first["finished_at"])
    assert image_present(stack, job.reference)
    assert_nothing_left_active()


def test_a_killed_pool_process_s_pull_is_redelivered_at_once_and_finished(stack, worker_env, proxy, settings, tmp_path):
    # The OOM killer's way: only the process running the task dies; the worker sees WorkerLostError and,
    # with acks_late + reject_on_worker_lost, hands the message back to the broker right away.
    # A prefork agent: one process per pull, so the OOM killer can take just that one.
    pool = start_worker(
        worker_env, tmp_path / "pool.log", "pool", gateway="faults-pool", agent_args=("--pool", "prefork", "-c", "2")
    )
    try:
        proxy.rate = 1 * MIB
        job, _ = queue_pull(through(proxy, stack, download_retries=2, gateway=gateway("faults-pool")))
        job = wait_until(lambda: downloading(job.pk), 30, "the pool process to download")
        child = int(re.search(r" pid (\d+) ", job.worker).group(1))
        assert child != pool.process.pid
        os.kill(child, signal.SIGKILL)
        killed = time.monotonic()
        # Redelivered and taken over without waiting PULL_STALE_AFTER_SECONDS for the heartbeat.
        job = wait_until(
            lambda: (j := row(job.pk)).state == "running" and len(j.attempts) == 2 and j, 20, "the takeover"
        )
        assert time.monotonic() - killed < 10
        proxy.rate = None
        job = wait_for_job(job.pk, timeout=60)
        assert "WorkerLostError" in pool.log()
    finally:
        stop_worker(pool)

    assert job.state == "succeeded", job.as_json()
    assert job.error_code == ""
    assert job.attempt == 2
    first, second = job.attempts
    assert first["outcome"] == "interrupted" and "process ended" in first["message"]
    assert f" pid {child} " in first["worker"] and f" pid {child} " not in second["worker"]
    assert second["outcome"] == "succeeded"
    assert when(second["started_at"]) >= when(first["finished_at"])
    assert image_present(stack, job.reference)
    assert_nothing_left_active()


# --- the broker goes away ------------------------------------------------------------------


def test_a_save_while_redis_is_down_waits_for_the_task_queue_and_runs_when_it_is_back(
    stack, worker, operator_client, settings
):
    # A pull whose message Redis accepted but nobody consumed before Redis restarted (empty: no persistence).
    nobody = gateway("faults-nobody-reads-this")
    lost, _ = queue_pull(make_instance(stack, "busybox", enabled=False, gateway=nobody))
    assert row(lost.pk).dispatched_at is not None

    instance_name = f"faults-saved-while-redis-is-down-{time.monotonic_ns()}"
    stop_redis(stack)
    try:
        started = time.monotonic()
        response = operator_client.post(
            reverse("instance-create"),
            form_data(stack, name=instance_name, download_retry_interval=300),
        )
        save_seconds = time.monotonic() - started
        assert response.status_code == 302, response.content.decode()[:3000]
        assert save_seconds < 3, f"Save took {save_seconds:.1f} s with Redis down"
        job = PullJob.objects.get(instance__name=instance_name)
        assert response["Location"] == reverse("pull-detail", args=[job.pk])
        assert job.state == "queued" and job.dispatched_at is None
        page = operator_client.get(reverse("pull-detail", args=[job.pk])).content.decode()
        assert "Waiting for the task queue" in page
        assert operator_client.get(reverse("pull-json", args=[job.pk])).json()["state"] == "queued"
        # It stays queued (not dropped, not failed) through a few sweeper rounds without a broker.
        time.sleep(5)
        assert row(job.pk).state == "queued" and row(job.pk).dispatched_at is None
    finally:
        start_redis(stack)
    back = time.monotonic()
    # Its gateway gets an agent now (the test's worker takes that role), after Redis forgot the message.
    ContainerInstance.objects.filter(pk=lost.instance_id).update(gateway=gateway("local"))

    job = wait_for_job(job.pk, timeout=60)
    assert job.state == "succeeded", (job.as_json(), job.error_message)
    assert job.error_code == ""
    assert job.dispatched_at is not None
    assert job.attempt == 1 and len(job.attempts) == 1
    ran_after = (job.started_at - job.queued_at).total_seconds()
    assert ran_after > 5
    assert time.monotonic() - back < 45

    # The message Redis lost: the sweeper sends the job again once it has waited PULL_STALE_AFTER_SECONDS.
    lost = wait_for_job(lost.pk, timeout=60)
    assert lost.state == "succeeded", lost.as_json()
    assert lost.error_code == ""
    assert lost.attempt == 1 and len(lost.attempts) == 1
    assert_nothing_left_active()


# --- the Docker daemon restarts -----------------------------------------------------------


def test_a_daemon_restart_in_the_middle_of_a_pull_is_retried_and_the_pull_finishes(stack, worker, proxy):
    proxy.rate = 1 * MIB
    job, _ = queue_pull(through(proxy, stack, download_retries=30, download_retry_interval=500))
    wait_until(lambda: downloading(job.pk), 30, "the download to start")
    stop_dockerd(stack)
    try:
        wait_until(
            lambda: any(a["code"] == "daemon_unreachable" for a in row(job.pk).attempts),
            30,
            "an attempt to fail with daemon_unreachable",
        )
        # Waiting out the interval (queued, holding no worker) or in its next attempt; not failed.
        assert row(job.pk).state in ("queued", "running")
    finally:
        start_dockerd(stack)
    proxy.rate = None
    job = wait_for_job(job.pk, timeout=120)

    assert job.state == "succeeded", job.as_json()
    assert job.error_code == ""
    assert 2 <= job.attempt <= 31
    failed = job.attempts[:-1]
    assert failed and all(a["outcome"] == "failed" for a in failed)
    assert {a["code"] for a in failed} == {"daemon_unreachable"}, failed
    assert "Docker daemon" in failed[0]["message"]
    assert job.attempts[-1]["outcome"] == "succeeded"
    assert image_present(stack, job.reference)
    assert_nothing_left_active()


# --- the registry goes away ------------------------------------------------------------------


def test_an_unreachable_registry_fails_with_registry_unreachable_naming_the_host(stack, worker):
    instance = make_instance(stack, "busybox", enabled=False, download_retries=2, download_retry_interval=200)
    stop_registry(stack)
    try:
        job, _ = queue_pull(instance)
        job = wait_for_job(job.pk, timeout=60)
    finally:
        start_registry(stack)
    assert job.state == "failed"
    assert job.error_code == "registry_unreachable"
    assert stack.registry in job.error_message
    assert job.attempt == 3  # download_retries=2: two more after the first
    assert [a["code"] for a in job.attempts] == ["registry_unreachable"] * 3
    assert_nothing_left_active()


def test_a_registry_stopped_mid_download_fails_with_registry_unreachable_after_the_retries(stack, worker, proxy):
    proxy.rate = 1 * MIB
    job, _ = queue_pull(through(proxy, stack, download_retries=2, download_retry_interval=300))
    wait_until(lambda: downloading(job.pk), 30, "the download to start")
    stop_registry(stack)
    try:
        job = wait_for_job(job.pk, timeout=60)
    finally:
        start_registry(stack)
    assert job.state == "failed", job.as_json()
    assert job.error_code == "registry_unreachable"
    assert proxy.address in job.error_message
    assert job.attempt == 3
    assert [a["code"] for a in job.attempts] == ["registry_unreachable"] * 3
    assert "broke off" in job.attempts[0]["message"]  # the first one lost it mid-layer
    assert proxy.refused >= 2  # the later attempts found nobody behind the proxy
    assert proxy.wait_idle(15)
    assert not image_present(stack, job.reference)
    assert_nothing_left_active()


def test_a_connection_reset_mid_download_is_retried_and_the_pull_finishes(stack, worker, proxy, operator_client):
    proxy.rate = 1 * MIB
    job, _ = queue_pull(through(proxy, stack, download_retries=2, download_retry_interval=300))
    wait_until(lambda: downloading(job.pk), 30, "the download to start")
    assert proxy.cut_all() >= 1
    proxy.rate = None
    job = wait_for_job(job.pk, timeout=60)
    assert job.state == "succeeded", job.as_json()
    assert job.error_code == ""
    assert job.attempt == 2
    first, second = job.attempts
    assert first["outcome"] == "failed" and first["code"] == "registry_unreachable"
    assert proxy.address in first["message"]
    assert second["outcome"] == "succeeded"
    # The retry waited the instance's interval (300 ms), not the daemon's own 5 s.
    gap = (when(second["started_at"]) - when(first["finished_at"])).total_seconds()
    assert 0.25 <= gap < 3, gap
    # The history is on the status page and in the JSON.
    page = operator_client.get(reverse("pull-detail", args=[job.pk])).content.decode()
    assert 'id="pull-attempts"' in page and "registry_unreachable" in page and "broke off" in page
    assert operator_client.get(reverse("pull-json", args=[job.pk])).json()["attempts"] == job.attempts
    assert image_present(stack, job.reference)
    assert_nothing_left_active()


# --- Docker Hub's rate limit ------------------------------------------------------------------


def test_a_429_from_the_registry_is_rate_limited_with_backoff_and_advice(stack, worker):
    with FakeRegistry("429") as hub:
        instance = ContainerInstance.objects.create(
            name="faults-rate-limited",
            enabled=False,
            image_name=f"{hub.address}/library/app",
            image_tag="1.0",
            registry_url=hub.address,
            download_retries=3,
            download_retry_interval=300,
            download_timeout=60,
        )
        job, _ = queue_pull(instance)
        job = wait_for_job(job.pk, timeout=60)
        asked = hub.repository_requests()

    assert job.state == "failed", job.as_json()
    assert job.error_code == "rate_limited"
    assert job.attempt == 4
    assert [a["code"] for a in job.attempts] == ["rate_limited"] * 4
    message = job.error_message
    assert hub.address in message and "toomanyrequests" in message
    assert "Docker Hub limits anonymous pulls" in message and "credentials" in message
    # Every attempt asked the registry (no answer from a cache).
    assert len(asked) >= 4
    # Backoff: the interval (0.3 s), doubled after each rate_limited in a row: 0.3, 0.6, 1.2 s.
    for index, expected in enumerate((0.3, 0.6, 1.2)):
        ended = when(job.attempts[index]["finished_at"])
        next_start = when(job.attempts[index + 1]["started_at"])
        waited = (next_start - ended).total_seconds()
        assert expected - 0.05 <= waited < expected + 2.0, (index, waited, job.attempts)
    assert_nothing_left_active()


# --- too slow ------------------------------------------------------------------------------------


def test_each_attempt_is_bounded_by_the_download_timeout(stack, worker, proxy):
    proxy.rate = 256 * 1024  # 24 MiB would take about 100 s
    started = time.monotonic()
    job, _ = queue_pull(through(proxy, stack, download_retries=1, download_retry_interval=200, download_timeout=3))
    job = wait_for_job(job.pk, timeout=60)
    took = time.monotonic() - started
    assert job.state == "failed", job.as_json()
    assert job.error_code == "timeout"
    assert "Image Download Timeout" in job.error_message
    assert job.attempt == 2
    for attempt in job.attempts:
        assert attempt["code"] == "timeout"
        seconds = (when(attempt["finished_at"]) - when(attempt["started_at"])).total_seconds()
        assert 2.5 <= seconds < 8, (seconds, attempt)
    assert took < 30
    assert proxy.wait_idle(15), "the daemon kept downloading after the timeout"
    assert not image_present(stack, job.reference)
    assert_nothing_left_active()


# --- two clicks, one pull ------------------------------------------------------------------------


def test_two_pull_clicks_at_once_make_one_pull_and_a_second_delivery_is_refused(stack, worker, operator, proxy):
    proxy.rate = 1 * MIB
    instance = through(proxy, stack)
    barrier = threading.Barrier(2)
    locations: list[str] = []

    def click() -> None:
        browser = Client()
        browser.force_login(operator)
        barrier.wait(timeout=10)
        try:
            locations.append(browser.post(reverse("instance-pull", args=[instance.pk]))["Location"])
        finally:
            connection.close()

    clicks = [threading.Thread(target=click) for _ in range(2)]
    for thread in clicks:
        thread.start()
    for thread in clicks:
        thread.join(timeout=30)
    job = PullJob.objects.get(instance=instance)  # exactly one
    assert locations == [reverse("pull-detail", args=[job.pk])] * 2

    job = wait_until(lambda: downloading(job.pk), 30, "the download to start")
    # The same task delivered again while it runs (a redelivery, a sweeper re-send): refused by the claim.
    current_app.send_task(PULL_TASK, (job.pk,), queue=job.instance.gateway.queue)
    wait_for_log(worker, f"pull job {job.pk}: delivery refused (not_claimable): {REFUSED} it is running", 20)
    proxy.rate = None
    job = wait_for_job(job.pk, timeout=60)

    assert job.state == "succeeded", job.as_json()
    assert job.error_code == ""
    assert job.attempt == 1 and len(job.attempts) == 1
    assert PullJob.objects.filter(instance=instance).count() == 1
    assert_nothing_left_active()


# --- cancel ---------------------------------------------------------------------------------------


def test_a_running_pull_is_cancelled_from_its_page_and_the_worker_is_free_again(stack, worker, operator_client, proxy):
    proxy.rate = 512 * 1024
    job, _ = queue_pull(through(proxy, stack))
    wait_until(lambda: downloading(job.pk), 30, "the download to start")
    page = operator_client.get(reverse("pull-detail", args=[job.pk])).content.decode()
    assert "Cancel pull" in page

    asked = time.monotonic()
    response = operator_client.post(reverse("pull-cancel", args=[job.pk]))
    assert response.status_code == 302
    job = wait_for_job(job.pk, timeout=15)
    assert time.monotonic() - asked < 5
    assert job.state == "cancelled", job.as_json()
    assert job.error_code == ""
    assert job.attempt == 1 and job.attempts[-1]["outcome"] == "cancelled"
    assert proxy.wait_idle(15), "the daemon kept downloading after the cancel"
    wait_for_log(worker, f"pull job {job.pk} cancelled", 10)
    assert not image_present(stack, job.reference)

    # The worker is free: the next pull runs to the end.
    following, _ = queue_pull(make_instance(stack, "busybox", enabled=False))
    following = wait_for_job(following.pk, timeout=60)
    assert following.state == "succeeded", following.as_json()
    assert_nothing_left_active()


def test_a_pull_waiting_on_a_silent_registry_can_be_cancelled_too(stack, worker, operator_client):
    with FakeRegistry("hang") as silent:
        instance = ContainerInstance.objects.create(
            name=f"faults-silent-{time.monotonic_ns()}",
            enabled=False,
            image_name=f"{silent.address}/team/app",
            image_tag="1.0",
            registry_url=silent.address,
            download_retries=3,
            download_timeout=120,
        )
        job, _ = queue_pull(instance)
        # The daemon asked for the manifest and waits; it has not answered the worker yet.
        wait_until(lambda: silent.repository_requests() and row(job.pk).state == "running", 30, "the silent wait")
        asked = time.monotonic()
        assert operator_client.post(reverse("pull-cancel", args=[job.pk])).status_code == 302
        job = wait_for_job(job.pk, timeout=15)
        assert time.monotonic() - asked < 5
    assert job.state == "cancelled", job.as_json()
    assert job.error_code == ""
    assert job.attempt == 1 and job.attempts[-1]["outcome"] == "cancelled"
    wait_for_log(worker, f"pull job {job.pk} cancelled", 10)
    assert_nothing_left_active()

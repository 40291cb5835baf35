"""The agent's hold on a claimed job (orchestrator/pulls/link.py), against a live server's agent API.

Progress leaves at once the first time and then at most every PULL_PROGRESS_WRITE_INTERVAL; a job with nothing
new still asks about a cancel about every second; a job that is no longer this gateway's stops the link.
"""

from __future__ import annotations

import threading
import time

import pytest

from orchestrator.agent import client
from orchestrator.models import ContainerInstance, Gateway, PullJob
from orchestrator.pulls import actions
from orchestrator.pulls.link import Link
from orchestrator.pulls.progress import Snapshot

HOLDER = "agent@local pid 1 on test/1 #abcdef"


def snapshot(done: int) -> Snapshot:
    return Snapshot(
        progress=done // 10,
        bytes_done=done,
        bytes_total=1000,
        layers_done=0,
        layers_total=1,
        layers=[{"id": "a1", "status": "Downloading", "current": done, "total": 1000}],
        message="a1: Downloading",
        digest=None,
    )


@pytest.fixture
def claimed(agent_console):
    instance = ContainerInstance.objects.create(name="linked", image_name="team/app", image_tag="1")
    job = PullJob.objects.create(instance=instance, reference="docker.io/team/app:1")
    assert actions.claim(job.pk, HOLDER)
    return job


@pytest.fixture
def requests_sent(monkeypatch):
    """Every agent API request of the test's Console, as (method, path)."""
    sent: list[tuple[str, str]] = []
    lock = threading.Lock()
    call = client.Console._call

    def counted(self, method, path, **kwargs):
        with lock:
            sent.append((method, path))
        return call(self, method, path, **kwargs)

    monkeypatch.setattr(client.Console, "_call", counted)
    return sent


def test_the_first_progress_goes_at_once_and_the_rest_at_most_every_interval(claimed, requests_sent, settings):
    settings.PULL_PROGRESS_WRITE_INTERVAL = 0.5
    link = Link(claimed.pk, HOLDER, period=30)  # no beats in the way: only progress counts here
    link.start()
    try:
        # As the runner does: the attempt begins, and its first progress follows at once, not an interval later.
        assert link.step("begin_attempt", number=1)
        started = time.monotonic()
        link.progress(snapshot(10))
        deadline = time.monotonic() + 2
        while PullJob.objects.get(pk=claimed.pk).bytes_done != 10:
            assert time.monotonic() < deadline, "the first progress did not arrive"
            time.sleep(0.01)
        first = time.monotonic() - started
        # Then a snapshot every 10 ms for 1.5 s: only the latest counts, a few times a second.
        for done in range(20, 170):
            link.progress(snapshot(done))
            time.sleep(0.01)
        assert link.step("pulled", digest="", platform="", up_to_date=False)
    finally:
        link.stop()
    assert first < 0.2, f"the first progress took {first:.2f} s"
    batches = [path for _, path in requests_sent if path.endswith("/events")]
    # The begin step, the first progress, 1.5 s at one batch per 0.5 s, the pulled step: never one per snapshot.
    assert 4 <= len(batches) <= 7, batches
    row = PullJob.objects.get(pk=claimed.pk)
    assert row.bytes_done == 169 and row.container_state == PullJob.ContainerState.PULLED


def test_a_cancel_reaches_a_quiet_job_within_about_a_second(claimed, settings):
    link = Link(claimed.pk, HOLDER)  # the default period: at most CANCEL_POLL_SECONDS
    link.start()
    try:
        time.sleep(0.3)
        assert not link.cancel_requested()
        assert actions.request_cancel(PullJob.objects.get(pk=claimed.pk))
        asked = time.monotonic()
        while not link.cancel_requested():
            assert time.monotonic() - asked < 3, "the link never heard of the cancel"
            time.sleep(0.05)
    finally:
        link.stop()
    assert time.monotonic() - asked < 2.5
    assert not link.lost.is_set()


def test_a_job_whose_instance_moved_to_another_gateway_stops_the_link(claimed):
    other = Gateway.objects.create(name="elsewhere")
    ContainerInstance.objects.filter(pk=claimed.instance_id).update(gateway=other)
    link = Link(claimed.pk, HOLDER, period=30)
    assert link.step("begin_attempt", number=1) is False
    assert link.lost.is_set()
    # Nothing was written for the holder that no longer may.
    assert PullJob.objects.get(pk=claimed.pk).attempts == []

"""Every state change of a pull job (orchestrator/pulls/actions.py): claims, fences, attempts, the sweeper's decisions.

The real faults (killed workers, restarts, cut connections) are in tests/e2e/test_faults.py; these pin down
the decisions on the job row.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from orchestrator.agentapi.jobs import describe
from orchestrator.models import ContainerInstance, PullJob
from orchestrator.pulls import actions
from orchestrator.pulls.holders import holder_is_gone, holder_token
from orchestrator.pulls.sweeper import sweep

# --- claims, leases and the sweeper --------------------------------------------------------


@pytest.fixture
def job(db):
    instance = ContainerInstance.objects.create(
        name="web", image_name="team/app", image_tag="1", download_retries=1, download_retry_interval=100
    )
    return PullJob.objects.create(
        instance=instance, reference="docker.io/team/app:1", download_retries=1, dispatched_at=timezone.now()
    )


def _age_heartbeat(job_id: int, seconds: float) -> None:
    PullJob.objects.filter(pk=job_id).update(heartbeat_at=timezone.now() - timedelta(seconds=seconds))


def test_only_one_claim_of_a_queued_job_wins(job):
    assert actions.claim(job.pk, "a@host pid 1 #1")
    assert not actions.claim(job.pk, "b@host pid 2 #2")
    job.refresh_from_db()
    assert job.state == "running" and job.worker == "a@host pid 1 #1"
    assert "held by a@host" in describe(job.pk)


def test_a_cancelled_or_finished_job_refuses_every_claim(job):
    PullJob.objects.filter(pk=job.pk).update(state="cancelled", cancel_requested=True)
    assert not actions.claim(job.pk, "a@host pid 1 #1")
    assert not actions.claim(123456, "a@host pid 1 #1")
    assert describe(123456) == "it no longer exists"


def test_a_stale_job_is_requeued_with_its_attempt_marked_interrupted(job, settings):
    settings.PULL_STALE_AFTER_SECONDS = 15
    holder = "victim@host pid 1 #1"
    assert actions.claim(job.pk, holder)
    fence = actions.Fence(job.pk, holder)
    assert actions.begin_attempt(fence, 1)
    _age_heartbeat(job.pk, 20)

    counts = sweep()
    job.refresh_from_db()
    assert counts["requeued"] == 1
    assert job.state == "queued" and job.worker == "" and job.attempt == 1
    assert job.attempts[0]["outcome"] == "interrupted" and job.attempts[0]["finished_at"]
    assert "victim@host" in job.attempts[0]["message"]
    # The old holder's writes are fenced off now.
    assert not actions.container_progress(fence, message="still here?")
    assert not actions.pulled(fence, digest="", platform="", up_to_date=False)
    assert fence.lost.is_set()


def test_a_live_heartbeat_is_left_alone(job, settings):
    settings.PULL_STALE_AFTER_SECONDS = 15
    assert actions.claim(job.pk, "a@host pid 1 #1")
    _age_heartbeat(job.pk, 5)
    assert sweep()["requeued"] == 0
    assert PullJob.objects.get(pk=job.pk).state == "running"


def test_a_stale_job_whose_budget_is_used_up_fails_as_interrupted(job, settings):
    settings.PULL_STALE_AFTER_SECONDS = 15
    assert actions.claim(job.pk, "a@host pid 1 #1")
    PullJob.objects.filter(pk=job.pk).update(attempt=2)  # download_retries=1: two attempts in all
    _age_heartbeat(job.pk, 20)
    assert sweep()["interrupted"] == 1
    job.refresh_from_db()
    assert job.state == "failed" and job.error_code == "interrupted" and job.finished_at


def test_a_stale_job_that_was_asked_to_cancel_ends_cancelled(job, settings):
    settings.PULL_STALE_AFTER_SECONDS = 15
    assert actions.claim(job.pk, "a@host pid 1 #1")
    PullJob.objects.filter(pk=job.pk).update(cancel_requested=True)
    _age_heartbeat(job.pk, 20)
    assert sweep()["cancelled"] == 1
    assert PullJob.objects.get(pk=job.pk).state == "cancelled"


def test_a_late_delivery_takes_over_a_stale_job_by_the_sweeper_s_rules(job, settings):
    settings.PULL_STALE_AFTER_SECONDS = 15
    assert actions.claim(job.pk, "victim@host pid 1 #1")
    _age_heartbeat(job.pk, 20)
    assert actions.claim(job.pk, "late@host pid 2 #2")
    job.refresh_from_db()
    assert job.state == "running" and job.worker == "late@host pid 2 #2"


def test_attempts_are_recorded_in_order_with_their_outcome(job):
    holder = "a@host pid 1 #1"
    assert actions.claim(job.pk, holder)
    fence = actions.Fence(job.pk, holder)
    assert actions.begin_attempt(fence, 1)
    assert actions.attempt_failed(fence, 1, "registry_unreachable", "gone", 0.1)
    fence = actions.claim(job.pk, holder)  # the retry's delivery
    assert actions.begin_attempt(fence, 2)
    assert actions.pulled(fence, digest="", platform="", up_to_date=False)
    assert actions.finish(fence, "succeeded")
    job.refresh_from_db()
    assert [(a["number"], a["outcome"], a["code"]) for a in job.attempts] == [
        (1, "failed", "registry_unreachable"),
        (2, "succeeded", ""),
    ]
    assert job.state == "succeeded" and job.finished_at and job.attempt == 2
    assert job.as_json()["attempts"] == job.attempts


def _finished_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_holder_whose_process_ended_here_is_gone_and_others_are_not():
    here = holder_token("w@host")
    dead = here.replace(f" pid {os.getpid()} ", f" pid {_finished_pid()} ")
    assert holder_is_gone(dead)
    assert not holder_is_gone(here)  # this very process
    elsewhere = dead.replace(" on ", " on another-machine-")
    assert not holder_is_gone(elsewhere)
    assert not holder_is_gone("an old worker name without a pid")


def test_a_redelivery_takes_over_at_once_from_a_process_that_ended(job):
    dead = holder_token("w@host").replace(f" pid {os.getpid()} ", f" pid {_finished_pid()} ")
    assert actions.claim(job.pk, dead)
    fence = actions.Fence(job.pk, dead)
    assert actions.begin_attempt(fence, 1)
    # The heartbeat is fresh, yet the process is gone: no need to wait for it to go stale.
    assert actions.claim(job.pk, "next@host pid 2 on elsewhere #2")
    job.refresh_from_db()
    assert job.worker == "next@host pid 2 on elsewhere #2" and job.state == "running"
    assert job.attempts[0]["outcome"] == "interrupted" and "process ended" in job.attempts[0]["message"]


def test_the_history_keeps_the_latest_attempts_of_an_endless_retry(job):
    holder = "a@host pid 1 #1"
    assert actions.claim(job.pk, holder)
    fence = actions.Fence(job.pk, holder)
    for number in range(1, actions.HISTORY_LIMIT + 6):
        assert actions.begin_attempt(fence, number)
        assert actions.attempt_failed(fence, number, "daemon_unreachable", "down", 0)
        fence = actions.claim(job.pk, holder)
    job.refresh_from_db()
    assert len(job.attempts) == actions.HISTORY_LIMIT
    assert job.attempts[-1]["number"] == job.attempt == actions.HISTORY_LIMIT + 5
    assert job.attempts[0]["number"] == 6


def test_a_worker_that_lost_the_job_writes_nothing_in_the_container_phase(agent_console, settings):
    # Issue 13, bug 1: the container phase read the holder back from the row, so the old worker wrote on.
    # The agent's phase runs through the agent API (pulls/link.py) as it does on a gateway.
    from orchestrator.containers.phase import run_container_phase
    from orchestrator.pulls.link import Link

    settings.DOCKER_HOST = "unix:///nonexistent/docker.sock"
    instance = ContainerInstance.objects.create(name="web", image_name="team/app", image_tag="1")
    job = PullJob.objects.create(instance=instance, reference="docker.io/team/app:1", dispatched_at=timezone.now())
    assert actions.claim(job.pk, "worker-a")
    _age_heartbeat(job.pk, 1000)
    assert actions.release_stale(job.pk, stale_after=10) == "requeued"
    assert actions.claim(job.pk, "worker-b")
    before = PullJob.objects.values().get(pk=job.pk)
    link = Link(job.pk, "worker-a")
    assert run_container_phase(link, digest="") == "lost"
    assert link.lost.is_set()
    assert PullJob.objects.values().get(pk=job.pk) == before


def test_a_job_keeps_the_retry_budget_it_was_queued_with(job):
    ContainerInstance.objects.filter(pk=job.instance_id).update(download_retries=7)
    job.refresh_from_db()
    assert job.download_retries == 1 and job.max_attempts == 2
    job.attempt = 2
    assert not job.retries_left()
    job.download_retries = 0  # Kura's 0: no limit
    assert job.retries_left() and job.max_attempts is None


def test_a_failed_attempt_frees_the_worker_and_the_job_is_due_after_the_interval(job):
    fence = actions.claim(job.pk, "a@host pid 1 #1")
    assert actions.begin_attempt(fence, 1)
    assert actions.attempt_failed(fence, 1, "registry_unreachable", "gone", 30)
    job.refresh_from_db()
    assert job.state == "queued" and job.worker == "" and job.heartbeat_at is None and job.finished_at is None
    assert 29 < (job.not_before - timezone.now()).total_seconds() <= 30
    assert "Retrying in 30 s" in job.message and job.attempts[0]["outcome"] == "failed"
    # A delivery before the interval is over is refused: the countdown message is the one that counts.
    assert actions.claim(job.pk, "early@host pid 2 #2") is None
    # The sweeper sends it again only once it is overdue, not while its message waits out the interval.
    PullJob.objects.filter(pk=job.pk).update(dispatched_at=timezone.now() - timedelta(seconds=20))
    assert actions.redispatch_waiting(lost_after=10) == 0
    # A cancel while it waits ends it at once, no worker needed.
    assert actions.request_cancel(job)
    assert PullJob.objects.get(pk=job.pk).state == "cancelled"


def test_rate_limited_answers_in_a_row_are_read_from_the_history(job):
    # The console counts the earlier ones into the order; the agent adds the answer it just got.
    from orchestrator.agentapi.orders import rate_limited_in_a_row

    job.attempts = [{"code": "registry_unreachable"}, {"code": "rate_limited"}, {"code": "rate_limited"}]
    assert rate_limited_in_a_row(job) == 2
    job.attempts.append({"code": "timeout"})
    assert rate_limited_in_a_row(job) == 0

"""The rules behind the fault handling: retry delays, error texts, claims, leases and the sweeper's decisions.

The real faults (killed workers, restarts, cut connections) are in
tests/e2e/test_faults.py; these pin down the decisions on the job row.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from orchestrator import leases
from orchestrator.models import ContainerInstance, PullJob
from orchestrator.tasks import RATE_LIMIT_BACKOFF_CAP, retry_delay, sweep
from registries.errors import classify, daemon_lost, registry_broke_off

# --- retry delays ---------------------------------------------------------------------


def test_it_waits_the_interval_after_an_ordinary_failure():
    assert retry_delay("registry_unreachable", 30.0) == 30.0
    assert retry_delay("daemon_unreachable", 0.5, 3) == 0.5


def test_it_doubles_the_interval_for_each_rate_limited_answer_in_a_row():
    assert [retry_delay("rate_limited", 0.3, n) for n in (1, 2, 3, 4)] == pytest.approx([0.3, 0.6, 1.2, 2.4])


def test_it_caps_the_rate_limit_backoff_at_ten_minutes_or_the_interval():
    assert retry_delay("rate_limited", 30.0, 200) == RATE_LIMIT_BACKOFF_CAP
    assert retry_delay("rate_limited", 3600.0, 5) == 3600.0  # an interval above the cap is kept


# --- error texts ------------------------------------------------------------------------


def test_a_429_says_docker_hub_limits_anonymous_pulls_and_credentials_help():
    error = classify(
        "toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating",
        "docker.io/library/busybox:latest",
    )
    assert error.code == "rate_limited"
    assert "Docker Hub limits anonymous pulls" in error.message and "credentials" in error.message


def test_a_connection_closed_without_an_answer_is_registry_unreachable_with_the_host():
    error = classify('Get "http://10.0.0.5:5000/v2/": EOF', "10.0.0.5:5000/team/app:1")
    assert error.code == "registry_unreachable"
    assert "10.0.0.5:5000" in error.message


def test_a_broken_off_layer_and_a_lost_daemon_name_what_went_away():
    broke = registry_broke_off("registry.example:5000/team/app:1", "a1b2c3")
    assert broke.code == "registry_unreachable" and "registry.example:5000" in broke.message
    assert broke.retryable
    lost = daemon_lost("team/app:1", "unix:///var/run/docker.sock", "context canceled")
    assert lost.code == "daemon_unreachable" and "unix:///var/run/docker.sock" in lost.message


# --- claims, leases and the sweeper --------------------------------------------------------


@pytest.fixture
def job(db):
    instance = ContainerInstance.objects.create(
        name="web", image_name="team/app", image_tag="1", download_retries=1, download_retry_interval=100
    )
    return PullJob.objects.create(instance=instance, reference="docker.io/team/app:1", dispatched_at=timezone.now())


def _age_heartbeat(job_id: int, seconds: float) -> None:
    PullJob.objects.filter(pk=job_id).update(heartbeat_at=timezone.now() - timedelta(seconds=seconds))


def test_only_one_claim_of_a_queued_job_wins(job):
    assert leases.claim(job.pk, "a@host pid 1 #1")
    assert not leases.claim(job.pk, "b@host pid 2 #2")
    job.refresh_from_db()
    assert job.state == "running" and job.worker == "a@host pid 1 #1"
    assert "held by a@host" in leases.describe(job.pk)


def test_a_cancelled_or_finished_job_refuses_every_claim(job):
    PullJob.objects.filter(pk=job.pk).update(state="cancelled", cancel_requested=True)
    assert not leases.claim(job.pk, "a@host pid 1 #1")
    assert not leases.claim(123456, "a@host pid 1 #1")
    assert leases.describe(123456) == "it no longer exists"


def test_a_stale_job_is_requeued_with_its_attempt_marked_interrupted(job, settings):
    settings.PULL_STALE_AFTER_SECONDS = 15
    holder = "victim@host pid 1 #1"
    assert leases.claim(job.pk, holder)
    lease = leases.Lease(job.pk, holder)
    assert lease.begin_attempt(1, "Attempt 1")
    _age_heartbeat(job.pk, 20)

    counts = sweep()
    job.refresh_from_db()
    assert counts["requeued"] == 1
    assert job.state == "queued" and job.worker == "" and job.attempt == 1
    assert job.attempts[0]["outcome"] == "interrupted" and job.attempts[0]["finished_at"]
    assert "victim@host" in job.attempts[0]["message"]
    # The old holder's writes are fenced off now.
    assert not lease.update(message="still here?")
    assert not lease.end_attempt("succeeded")
    assert lease.lost.is_set()


def test_a_live_heartbeat_is_left_alone(job, settings):
    settings.PULL_STALE_AFTER_SECONDS = 15
    assert leases.claim(job.pk, "a@host pid 1 #1")
    _age_heartbeat(job.pk, 5)
    assert sweep()["requeued"] == 0
    assert PullJob.objects.get(pk=job.pk).state == "running"


def test_a_stale_job_whose_budget_is_used_up_fails_as_interrupted(job, settings):
    settings.PULL_STALE_AFTER_SECONDS = 15
    assert leases.claim(job.pk, "a@host pid 1 #1")
    PullJob.objects.filter(pk=job.pk).update(attempt=2)  # download_retries=1: two attempts in all
    _age_heartbeat(job.pk, 20)
    assert sweep()["interrupted"] == 1
    job.refresh_from_db()
    assert job.state == "failed" and job.error_code == "interrupted" and job.finished_at


def test_a_stale_job_that_was_asked_to_cancel_ends_cancelled(job, settings):
    settings.PULL_STALE_AFTER_SECONDS = 15
    assert leases.claim(job.pk, "a@host pid 1 #1")
    PullJob.objects.filter(pk=job.pk).update(cancel_requested=True)
    _age_heartbeat(job.pk, 20)
    assert sweep()["cancelled"] == 1
    assert PullJob.objects.get(pk=job.pk).state == "cancelled"


def test_a_late_delivery_takes_over_a_stale_job_by_the_sweeper_s_rules(job, settings):
    settings.PULL_STALE_AFTER_SECONDS = 15
    assert leases.claim(job.pk, "victim@host pid 1 #1")
    _age_heartbeat(job.pk, 20)
    assert leases.claim(job.pk, "late@host pid 2 #2")
    job.refresh_from_db()
    assert job.state == "running" and job.worker == "late@host pid 2 #2"


def test_attempts_are_recorded_in_order_with_their_outcome(job):
    holder = "a@host pid 1 #1"
    assert leases.claim(job.pk, holder)
    lease = leases.Lease(job.pk, holder)
    assert lease.begin_attempt(1, "Attempt 1")
    assert lease.end_attempt("failed", "registry_unreachable", "gone", message="retrying")
    assert lease.begin_attempt(2, "Attempt 2")
    assert lease.end_attempt("succeeded", note="Pulled", state="succeeded")
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
    here = leases.holder_token("w@host")
    dead = here.replace(f" pid {os.getpid()} ", f" pid {_finished_pid()} ")
    assert leases.holder_is_gone(dead)
    assert not leases.holder_is_gone(here)  # this very process
    elsewhere = dead.replace(" on ", " on another-machine-")
    assert not leases.holder_is_gone(elsewhere)
    assert not leases.holder_is_gone("an old worker name without a pid")


def test_a_redelivery_takes_over_at_once_from_a_process_that_ended(job):
    dead = leases.holder_token("w@host").replace(f" pid {os.getpid()} ", f" pid {_finished_pid()} ")
    assert leases.claim(job.pk, dead)
    lease = leases.Lease(job.pk, dead)
    assert lease.begin_attempt(1, "Attempt 1")
    # The heartbeat is fresh, yet the process is gone: no need to wait for it to go stale.
    assert leases.claim(job.pk, "next@host pid 2 on elsewhere #2")
    job.refresh_from_db()
    assert job.worker == "next@host pid 2 on elsewhere #2" and job.state == "running"
    assert job.attempts[0]["outcome"] == "interrupted" and "process ended" in job.attempts[0]["message"]


def test_the_history_keeps_the_latest_attempts_of_an_endless_retry(job):
    holder = "a@host pid 1 #1"
    assert leases.claim(job.pk, holder)
    lease = leases.Lease(job.pk, holder)
    for number in range(1, leases.HISTORY_LIMIT + 6):
        assert lease.begin_attempt(number, f"Attempt {number}")
        assert lease.end_attempt("failed", "daemon_unreachable", "down")
    job.refresh_from_db()
    assert len(job.attempts) == leases.HISTORY_LIMIT
    assert job.attempts[-1]["number"] == job.attempt == leases.HISTORY_LIMIT + 5
    assert job.attempts[0]["number"] == 6

"""A running pull's download rate and time left (orchestrator/pulls/rate.py), in its JSON and on its page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.urls import reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.models import ContainerInstance, Gateway, PullJob
from orchestrator.pulls import actions
from orchestrator.pulls.progress import Snapshot
from orchestrator.pulls.rate import Estimate, estimate, for_job, time_left_text

MB = 1_000_000
START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def running_job(seconds: float = 10, bytes_done: int = 50 * MB, bytes_total: int | None = 200 * MB, **fields):
    """A job's fields as the worker leaves them mid-download: attempt 1 began at START."""
    values = dict(
        state="running",
        agent_lost=False,
        attempt=1,
        attempts=[{"number": 1, "outcome": "running", "started_at": START.isoformat(), "finished_at": None}],
        message="a1b2c3: Downloading",
        heartbeat_at=START + timedelta(seconds=seconds),
        bytes_done=bytes_done,
        bytes_total=bytes_total,
    )
    return SimpleNamespace(**{**values, **fields})


# --- the computation -------------------------------------------------------------------------------


def test_it_averages_the_attempt_s_bytes_over_its_seconds():
    assert estimate(50 * MB, 200 * MB, 10) == Estimate(rate=5 * MB, seconds_left=30)


def test_it_rounds_the_time_left_up():
    assert estimate(3 * MB, 10 * MB, 2).seconds_left == 5  # 7 MB at 1.5 MB/s: 4.67 s
    assert estimate(1, 2, 1.5).rate == 1  # never 0 bytes per second while bytes arrive


def test_it_gives_a_rate_but_no_time_left_while_a_layer_s_size_is_unknown():
    assert estimate(50 * MB, None, 10) == Estimate(rate=5 * MB, seconds_left=None)


@pytest.mark.parametrize("seconds", [None, 0, 0.3, 0.999, -5])
def test_it_has_no_rate_from_less_than_a_second_of_data(seconds):
    assert estimate(5 * MB, 10 * MB, seconds) == Estimate()


def test_it_has_no_rate_before_the_first_byte():
    assert estimate(0, 10 * MB, 30) == Estimate()
    assert estimate(0, 0, 30) == Estimate()  # every layer already there: nothing to download


def test_once_every_byte_is_in_it_says_downloaded_instead_of_a_rate():
    assert estimate(10 * MB, 10 * MB, 30) == Estimate(downloaded=True)


@given(
    done=st.integers(min_value=1, max_value=10**12),
    extra=st.integers(min_value=1, max_value=10**12),
    seconds=st.floats(min_value=1, max_value=10**6),
)
def test_the_time_left_at_the_rate_covers_the_bytes_left(done, extra, seconds):
    result = estimate(done, done + extra, seconds)
    assert result.rate >= 1 and result.seconds_left >= 1
    assert result.seconds_left * (done / seconds) >= extra * (1 - 1e-9)
    assert (result.seconds_left - 1) * (done / seconds) <= extra * (1 + 1e-9)


# --- which jobs have one ---------------------------------------------------------------------------


def test_a_downloading_attempt_is_measured_from_its_start_to_the_last_heartbeat():
    assert for_job(running_job()) == Estimate(rate=5 * MB, seconds_left=30)


@pytest.mark.parametrize(
    "fields",
    [
        {"state": "queued"},
        {"state": "succeeded"},
        {"state": "failed"},
        {"agent_lost": True},
        {"heartbeat_at": None},
        {"attempts": []},
        # The download is over: the container phase runs under the same job.
        {"attempts": [{"number": 1, "outcome": "succeeded", "started_at": START.isoformat()}]},
        # The history says attempt 1 while the job moved on to 2.
        {"attempt": 2},
        {"attempts": [{"number": 1, "outcome": "running", "started_at": None}]},
    ],
)
def test_only_a_downloading_attempt_under_a_reporting_worker_has_a_rate(fields):
    assert for_job(running_job(**fields)) == Estimate()


# --- the words -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "seconds, text",
    [
        (1, "about 1 s left"),
        (40, "about 40 s left"),
        (59, "about 59 s left"),
        (60, "about 1 min left"),
        (89, "about 1 min left"),
        (150, "about 2 min left"),
        (3599, "about 1 h left"),
        (3600, "about 1 h left"),
        (3900, "about 1 h 5 min left"),
    ],
)
def test_the_time_left_reads_in_the_unit_that_fits(seconds, text):
    assert time_left_text(seconds) == text


def test_the_rate_reads_in_the_page_s_byte_units():
    assert Estimate(rate=12_900_000).rate_text == "12.3\xa0MB/s"
    assert Estimate(rate=500).rate_text == "500\xa0bytes/s"
    assert Estimate().rate_text == "" and Estimate().time_left_text == ""


# --- on the job row, its JSON and its page ---------------------------------------------------------


@pytest.fixture
def downloading(db):
    """A job whose worker began attempt 1 and wrote its first progress, as the worker does."""
    Gateway.objects.filter(name="local").update(last_seen=timezone.now())
    instance = ContainerInstance.objects.create(name="web", image_name="team/app", image_tag="1")
    job = PullJob.objects.create(instance=instance, reference="docker.io/team/app:1", dispatched_at=timezone.now())
    fence = actions.claim(job.pk, "a@host pid 1 #1")
    assert actions.begin_attempt(fence, 1)
    return job, fence


def progress(bytes_done: int, bytes_total: int | None) -> Snapshot:
    return Snapshot(
        progress=None if bytes_total is None else bytes_done * 50 // bytes_total,
        bytes_done=bytes_done,
        bytes_total=bytes_total,
        layers_done=0,
        layers_total=2,
        layers=[],
        message="a1b2c3: Downloading",
        digest=None,
    )


def _started(job: PullJob, seconds_ago: float) -> None:
    """Move the attempt's start back, as if it had run for ``seconds_ago`` seconds."""
    job.refresh_from_db()
    attempts = job.attempts
    attempts[-1]["started_at"] = (job.heartbeat_at - timedelta(seconds=seconds_ago)).isoformat()
    PullJob.objects.filter(pk=job.pk).update(attempts=attempts)


def test_a_new_attempt_does_not_count_the_previous_attempt_s_bytes(downloading):
    job, fence = downloading
    assert actions.record_progress(fence, progress(80 * MB, 100 * MB))
    assert actions.begin_attempt(fence, 2)  # attempt 1 failed; its 80 MB must not count for attempt 2
    _started(job, 5)
    data = PullJob.objects.select_related("instance__gateway").get(pk=job.pk).as_json()
    assert data["bytes_done"] == 0
    assert data["download_rate"] is None and data["seconds_left"] is None


def test_the_json_and_the_page_show_the_rate_and_the_time_left(downloading, viewer_client):
    job, fence = downloading
    assert actions.record_progress(fence, progress(25 * MB, 125 * MB))
    _started(job, 10)
    data = viewer_client.get(reverse("pull-json", args=[job.pk])).json()
    assert data["download_rate"] == 2_500_000 and data["seconds_left"] == 40
    page = viewer_client.get(reverse("pull-detail", args=[job.pk])).content.decode()
    assert '<span id="pull-rate">2.4\xa0MB/s</span>' in page
    assert '<span id="pull-time-left">about 40 s left</span>' in page


def test_the_page_shows_the_rate_alone_while_sizes_are_unknown(downloading, viewer_client):
    job, fence = downloading
    assert actions.record_progress(fence, progress(25 * MB, None))
    _started(job, 10)
    page = viewer_client.get(reverse("pull-detail", args=[job.pk]), headers={"HX-Request": "true"}).content.decode()
    assert "the percentage appears once every layer's size is known" in page
    assert '<span id="pull-rate">2.4\xa0MB/s</span>' in page and 'id="pull-time-left"' not in page


def test_the_page_says_when_the_download_is_done_and_layers_extract(downloading, viewer_client):
    job, fence = downloading
    assert actions.record_progress(fence, progress(125 * MB, 125 * MB))
    _started(job, 10)
    page = viewer_client.get(reverse("pull-detail", args=[job.pk])).content.decode()
    assert "downloaded, extracting the layers" in page and 'id="pull-rate"' not in page


def test_an_ended_pull_has_null_figures_and_shows_none(downloading, viewer_client):
    job, fence = downloading
    assert actions.record_progress(fence, progress(25 * MB, 125 * MB))
    _started(job, 10)
    assert actions.fail(fence, 1, "timeout", "took too long")
    data = viewer_client.get(reverse("pull-json", args=[job.pk])).json()
    assert data["download_rate"] is None and data["seconds_left"] is None
    assert 'id="pull-rate"' not in viewer_client.get(reverse("pull-detail", args=[job.pk])).content.decode()

"""The agent API's pull jobs: the claim and its order, the event batches, and the job read back.

The events must move a job exactly as today's runner does through orchestrator/pulls/actions.py: each test of
a path drives a twin job through the actions directly and compares the rows.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orchestrator.containers.spec import build_spec, spec_values
from orchestrator.models import ContainerInstance, EcrTokenCache, PullJob
from orchestrator.pulls import actions
from orchestrator.pulls.progress import Snapshot
from registries.aws import EcrPassword
from registries.errors import PullError

from . import test_agent_api as base
from .test_agent_api import API, HOLDER, post, rows

# The shared fixtures (a module's fixtures are found by name, so they are bound here).
plant, other, sent = base.plant, base.other, base.sent

OTHER_HOLDER = "agent@plant-a pid 8 on box/4026531836 #def456"
ECR_HOST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
SNAPSHOT = {
    "progress": 40,
    "bytes_done": 400,
    "bytes_total": 1000,
    "layers_done": 1,
    "layers_total": 2,
    "layers": [
        {"id": "aaa", "status": "Pull complete", "current": 600, "total": 600},
        {"id": "bbb", "status": "Downloading", "current": 100, "total": 400},
    ],
    "message": "bbb: Downloading",
    "digest": None,
}
DONE = {**SNAPSHOT, "progress": 100, "bytes_done": 1000, "layers_done": 2, "message": "Status: Downloaded"}
DIGEST = "sha256:" + "c" * 64


def claim(world, holder=HOLDER, **body):
    return post(world.client, f"{API}/jobs/{world.job.pk}/claim", {"holder": holder, **body})


def send(world, *events, holder=HOLDER):
    return post(world.client, f"{API}/jobs/{world.job.pk}/events", {"holder": holder, "events": list(events)})


def twin(world) -> PullJob:
    """A second job like the world's, for the same calls made through pulls/actions.py directly."""
    return PullJob.objects.create(
        instance=world.instance, reference=world.job.reference, download_retries=world.job.download_retries
    )


def comparable(job_id: int) -> dict:
    """The row without what differs by the clock or the id."""
    row = PullJob.objects.filter(pk=job_id).values().get()
    for name in ("id", "queued_at", "started_at", "finished_at", "heartbeat_at", "not_before", "dispatched_at"):
        row.pop(name)
    row["attempts"] = [
        {key: value for key, value in attempt.items() if key not in ("started_at", "finished_at")}
        for attempt in row["attempts"]
    ]
    return row


# --- the claim and its order -------------------------------------------------------------------------------


def test_a_claim_takes_the_job_and_answers_the_order_of_its_first_attempt(plant):
    ContainerInstance.objects.filter(pk=plant.instance.pk).update(digest_pin=DIGEST, download_timeout=90)
    response = claim(plant)
    assert response.status_code == 200, response.content
    assert response.json() == {
        "job": plant.job.pk,
        "reference": "docker.io/team/app:1",
        "platform": None,
        "download_timeout": 90,
        "download_retries": 2,
        "download_retry_interval": 30000,
        "attempt": 1,
        "retries_left": True,
        "rate_limited_in_a_row": 0,
        "digest_pin": DIGEST,
        "auth": None,
        "scrub": [],
        "aws_chain": None,
        "credentials_error": None,
    }
    job = PullJob.objects.get(pk=plant.job.pk)
    assert job.state == "running" and job.worker == HOLDER and job.heartbeat_at


def test_a_second_claim_is_409_with_the_runners_words_and_changes_nothing(plant):
    assert claim(plant).status_code == 200
    before = rows()
    response = claim(plant, OTHER_HOLDER)
    assert response.status_code == 409
    body = response.json()
    assert body["error"]["code"] == "not_claimable"
    assert f"it is running, held by {HOLDER}" in body["error"]["message"]
    assert body["holder"] == HOLDER
    assert rows() == before


@pytest.mark.parametrize("state", ["succeeded", "failed", "cancelled"])
def test_an_ended_job_cannot_be_claimed(plant, state):
    PullJob.objects.filter(pk=plant.job.pk).update(state=state)
    response = claim(plant)
    assert response.status_code == 409 and f"it is {state}" in response.json()["error"]["message"]
    assert response.json()["holder"] is None


def test_a_holder_the_agent_knows_is_gone_is_taken_over_at_once(plant):
    assert claim(plant).status_code == 200
    assert send(plant, {"type": "begin_attempt", "number": 1}).json()["applied"] == 1
    # Naming another holder than the one holding it releases nothing.
    assert claim(plant, OTHER_HOLDER, gone_holder="someone else").status_code == 409
    response = claim(plant, OTHER_HOLDER, gone_holder=HOLDER)
    assert response.status_code == 200, response.content
    assert response.json()["attempt"] == 2
    job = PullJob.objects.get(pk=plant.job.pk)
    assert job.worker == OTHER_HOLDER and job.attempts[0]["outcome"] == "interrupted"


def test_the_last_attempt_has_no_retries_left_and_rate_limits_in_a_row_are_counted(plant):
    attempts = [{"number": n, "code": code, "outcome": "failed"} for n, code in ((1, "timeout"), (2, "rate_limited"))]
    PullJob.objects.filter(pk=plant.job.pk).update(attempt=2, attempts=attempts)
    order = claim(plant).json()
    assert order["attempt"] == 3 and order["retries_left"] is False and order["rate_limited_in_a_row"] == 1


def test_a_stored_password_goes_in_the_order_and_in_scrub_only(plant, caplog):
    caplog.set_level(logging.DEBUG)
    password = "stored-Pw-8812"
    ContainerInstance.objects.filter(pk=plant.instance.pk).delete()
    instance = ContainerInstance.objects.create(
        gateway=plant.gateway,
        name="private",
        image_name="registry.example.com/team/app",
        registry_username="me",
        registry_password=password,
        pull_platform="linux/arm64",
    )
    plant.job = PullJob.objects.create(instance=instance, reference="registry.example.com/team/app:latest")
    order = claim(plant).json()
    assert order["auth"] == {"username": "me", "password": password, "serveraddress": "registry.example.com"}
    assert order["scrub"] == [password]
    assert order["platform"] == "linux/arm64" and order["credentials_error"] is None
    assert password not in caplog.text
    # The other reads never carry it.
    detail = plant.client.get(f"{API}/jobs/{plant.job.pk}").content.decode()
    listing = plant.client.get(f"{API}/instances").content.decode()
    assert password not in detail and password not in listing


def test_a_stored_secret_for_another_host_is_a_credentials_error_and_nothing_is_sent(plant):
    ContainerInstance.objects.filter(pk=plant.instance.pk).update(
        registry_username="me", registry_password="for-Elsewhere-1", credentials_host="other.example.com"
    )
    order = claim(plant).json()
    assert order["auth"] is None and order["scrub"] == []
    assert order["credentials_error"]["code"] == "credentials_mismatch"
    assert order["credentials_error"]["retryable"] is False
    assert "for-Elsewhere-1" not in str(order)


def test_an_expired_pasted_password_is_a_credentials_error(plant):
    instance = ContainerInstance.objects.get(pk=plant.instance.pk)
    instance.registry_username, instance.registry_password = "AWS", "pasted-Ecr-Pw-1"
    instance.registry_password_expires_at = timezone.now() - timedelta(hours=1)
    instance.save()
    error = claim(plant).json()["credentials_error"]
    assert error["code"] == "token_expired" and "expired" in error["message"]


def _ecr_instance(plant, aws_auth: str, **fields) -> None:
    ContainerInstance.objects.filter(pk=plant.instance.pk).delete()
    instance = ContainerInstance.objects.create(
        gateway=plant.gateway, name="ecr", image_name=f"{ECR_HOST}/team/app", aws_auth=aws_auth, **fields
    )
    plant.job = PullJob.objects.create(instance=instance, reference=f"{ECR_HOST}/team/app:latest")


def test_stored_aws_keys_give_an_ecr_password_made_by_the_console_and_never_the_keys(plant, monkeypatch, caplog):
    """The ECR fetch itself (boto3 against AWS) is replaced here; tests/e2e runs it against moto."""
    caplog.set_level(logging.DEBUG)
    secret_key, token = "aws-Secret-Key-0042", "ecr-Password-From-AWS-77"
    asked = []

    def fetch(host, *, access_key_id, secret_access_key, use_chain, now):
        asked.append((host, access_key_id, secret_access_key, use_chain))
        return EcrPassword("AWS", token, now, now + timedelta(hours=12))

    monkeypatch.setattr("orchestrator.pulls.credentials.fetch_ecr_password", fetch)
    _ecr_instance(plant, "keys", aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key=secret_key)
    response = claim(plant)
    order = response.json()
    assert asked == [(ECR_HOST, "AKIAEXAMPLE", secret_key, False)]
    assert order["auth"] == {"username": "AWS", "password": token, "serveraddress": ECR_HOST}
    assert order["scrub"] == [token] and order["aws_chain"] is None
    assert secret_key not in response.content.decode() and secret_key not in caplog.text
    assert token not in caplog.text
    assert EcrTokenCache.objects.count() == 1  # cached on the console, as the runner caches it


def test_an_aws_error_is_the_orders_credentials_error(plant, monkeypatch):
    def fetch(host, **kwargs):
        raise PullError("auth_failed", "AWS rejected the access key.")

    monkeypatch.setattr("orchestrator.pulls.credentials.fetch_ecr_password", fetch)
    _ecr_instance(plant, "keys", aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key="aws-Secret-1")
    order = claim(plant).json()
    assert order["auth"] is None
    assert order["credentials_error"] == {
        "code": "auth_failed",
        "message": "AWS rejected the access key.",
        "retryable": False,
    }
    assert PullJob.objects.get(pk=plant.job.pk).state == "running"  # the agent records the attempt's failure


def test_the_gateways_own_aws_credentials_are_the_agents_business(plant, monkeypatch):
    def fetch(*args, **kwargs):
        raise AssertionError("the console must not ask AWS with its own identity")

    monkeypatch.setattr("orchestrator.pulls.credentials.fetch_ecr_password", fetch)
    _ecr_instance(plant, "chain", registry_url=f"https://{ECR_HOST}")
    order = claim(plant).json()
    assert order["auth"] is None and order["scrub"] == [] and order["credentials_error"] is None
    assert order["aws_chain"] == {"host": ECR_HOST, "registry_url": f"https://{ECR_HOST}"}


def test_the_gateways_own_aws_credentials_for_a_host_that_is_not_ecr_is_a_credentials_error(plant):
    ContainerInstance.objects.filter(pk=plant.instance.pk).update(aws_auth="chain")
    order = claim(plant).json()
    assert order["aws_chain"] is None and order["credentials_error"]["code"] == "invalid_reference"


# --- events: the runner's paths, compared with the actions called directly -----------------------------


def test_a_pull_and_its_container_phase_move_the_job_as_the_runner_does(plant):
    reference = twin(plant)
    assert actions.claim(reference.pk, HOLDER)
    fence = actions.Fence(reference.pk, HOLDER)
    assert actions.begin_attempt(fence, 1)
    assert actions.record_progress(fence, Snapshot(**SNAPSHOT))
    assert actions.record_progress(fence, Snapshot(**DONE))
    assert actions.pulled(fence, digest=DIGEST, platform="linux/amd64", up_to_date=False)
    assert actions.container_progress(fence, container_state="created", container_id="f" * 64, message="Created")
    assert actions.finish(
        fence, "succeeded", container_state="running", container_id="f" * 64, container_error="", message="Running"
    )

    order = claim(plant).json()
    pulled = {"type": "pulled", "digest": DIGEST, "platform": "linux/amd64", "up_to_date": False}
    response = send(
        plant,
        {"type": "begin_attempt", "number": order["attempt"]},
        {"type": "progress", **SNAPSHOT},
        {"type": "beat"},
        {"type": "progress", **DONE},
        pulled,
    )
    assert response.json() == {"applied": 5, "lost": False, "cancel_requested": False}
    mid = PullJob.objects.get(pk=plant.job.pk)
    assert mid.state == "running" and mid.container_state == "pulled" and mid.progress == 100
    response = send(
        plant,
        {"type": "container_progress", "container_state": "created", "container_id": "f" * 64, "message": "Created"},
        {"type": "finish", "state": "succeeded", "container_state": "running", "container_id": "f" * 64}
        | {"container_error": "", "message": "Running"},
    )
    assert response.json() == {"applied": 2, "lost": False, "cancel_requested": False}
    assert comparable(plant.job.pk) == comparable(reference.pk)
    assert PullJob.objects.get(pk=plant.job.pk).finished_at


def test_a_failed_attempt_requeues_the_job_due_later_and_the_console_sends_its_task(plant, sent):
    reference = twin(plant)
    assert actions.claim(reference.pk, HOLDER)
    fence = actions.Fence(reference.pk, HOLDER)
    assert actions.begin_attempt(fence, 1)
    assert actions.attempt_failed(fence, 1, "registry_unreachable", "The registry is down.", 30)

    claim(plant)
    response = send(
        plant,
        {"type": "begin_attempt", "number": 1},
        {"type": "attempt_failed", "number": 1, "code": "registry_unreachable"}
        | {"message": "The registry is down.", "retry_in": 30},
    )
    assert response.json() == {"applied": 2, "lost": False, "cancel_requested": False}
    assert comparable(plant.job.pk) == comparable(reference.pk)
    job = PullJob.objects.get(pk=plant.job.pk)
    assert job.state == "queued" and job.worker == "" and job.dispatched_at is not None
    assert timedelta(seconds=28) < job.not_before - timezone.now() <= timedelta(seconds=30)
    [task] = [task for task in sent if task.args == (plant.job.pk,)]
    assert task.queue == "gw.plant-a" and 28 < task.countdown <= 30
    # Not due yet: the next delivery is refused; once due, the next attempt's order follows.
    assert claim(plant).status_code == 409
    PullJob.objects.filter(pk=plant.job.pk).update(not_before=timezone.now() - timedelta(seconds=1))
    assert claim(plant, OTHER_HOLDER).json()["attempt"] == 2


def test_fail_and_cancel_attempt_end_the_job_as_the_runner_does(plant):
    for kind, event in (
        ("fail", {"type": "fail", "number": 1, "code": "not_found", "message": "No such tag."}),
        ("cancel", {"type": "cancel_attempt", "number": 1, "message": "Cancelled by the user."}),
    ):
        reference, job = twin(plant), twin(plant)
        assert actions.claim(reference.pk, HOLDER)
        fence = actions.Fence(reference.pk, HOLDER)
        assert actions.begin_attempt(fence, 1)
        if kind == "fail":
            assert actions.fail(fence, 1, "not_found", "No such tag.")
        else:
            assert actions.cancel_attempt(fence, 1, "Cancelled by the user.")
        plant.job = job
        assert claim(plant).status_code == 200
        assert send(plant, {"type": "begin_attempt", "number": 1}, event).json()["applied"] == 2
        assert comparable(job.pk) == comparable(reference.pk), kind


def test_a_lost_holder_is_told_and_changes_nothing(plant, settings):
    settings.PULL_STALE_AFTER_SECONDS = 15
    claim(plant)
    send(plant, {"type": "begin_attempt", "number": 1})
    # The sweeper gave the job to another agent process meanwhile.
    PullJob.objects.filter(pk=plant.job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=20))
    post(plant.client, f"{API}/heartbeat", {"facts": {}})
    assert claim(plant, OTHER_HOLDER).status_code == 200
    before = rows()
    response = send(plant, {"type": "progress", **SNAPSHOT}, {"type": "finish", "state": "succeeded"})
    assert response.json() == {"applied": 0, "lost": True, "cancel_requested": False}
    assert rows() == before
    # An empty batch asks whether the job is still this holder's.
    assert send(plant).json()["lost"] is True
    assert send(plant, holder=OTHER_HOLDER).json() == {"applied": 0, "lost": False, "cancel_requested": False}


def test_application_stops_where_the_hold_ends(plant):
    claim(plant)
    response = send(
        plant,
        {"type": "begin_attempt", "number": 1},
        {"type": "fail", "number": 1, "code": "not_found", "message": "No such tag."},
        {"type": "progress", **SNAPSHOT},
    )
    assert response.json() == {"applied": 2, "lost": True, "cancel_requested": False}
    job = PullJob.objects.get(pk=plant.job.pk)
    assert job.state == "failed" and job.progress is None


def test_a_cancel_request_is_reported_and_the_agent_ends_the_attempt(plant):
    claim(plant)
    send(plant, {"type": "begin_attempt", "number": 1})
    assert actions.request_cancel(PullJob.objects.get(pk=plant.job.pk))
    assert send(plant, {"type": "beat"}).json() == {"applied": 1, "lost": False, "cancel_requested": True}
    assert plant.client.get(f"{API}/jobs/{plant.job.pk}").json()["cancel_requested"] is True
    send(plant, {"type": "cancel_attempt", "number": 1, "message": "Cancelled."})
    assert PullJob.objects.get(pk=plant.job.pk).state == "cancelled"


BAD_EVENTS = {
    "unknown-type": {"type": "explode"},
    "no-type": {"number": 1},
    "unknown-field": {"type": "beat", "worker": "me"},
    "missing-field": {"type": "begin_attempt"},
    "bool-for-int": {"type": "begin_attempt", "number": True},
    "zero-attempt": {"type": "begin_attempt", "number": 0},
    "progress-over-100": {"type": "progress", **SNAPSHOT, "progress": 101},
    "negative-bytes": {"type": "progress", **SNAPSHOT, "bytes_done": -1},
    "huge-bytes": {"type": "progress", **SNAPSHOT, "bytes_total": 2**63},
    "long-message": {"type": "progress", **SNAPSHOT, "message": "m" * 501},
    "bad-layer": {"type": "progress", **SNAPSHOT, "layers": [{"id": "a", "status": "x", "size": 1}]},
    "negative-retry": {"type": "attempt_failed", "number": 1, "code": "timeout", "message": "", "retry_in": -1},
    "endless-retry": {"type": "attempt_failed", "number": 1, "code": "timeout", "message": "", "retry_in": 1e300},
    "code-shape": {"type": "fail", "number": 1, "code": "Not A Code", "message": "x"},
    "finish-state": {"type": "finish", "state": "running"},
    "finish-field": {"type": "finish", "state": "succeeded", "worker": ""},
    "container-field": {"type": "container_progress", "progress": 5},
    "container-nothing": {"type": "container_progress"},
    "container-state": {"type": "container_progress", "container_state": "exploded"},
    "pulled-platform": {"type": "pulled", "digest": DIGEST, "platform": "p" * 65, "up_to_date": False},
    "not-an-object": ["beat"],
}


@pytest.mark.parametrize("event", BAD_EVENTS.values(), ids=BAD_EVENTS.keys())
def test_one_bad_event_refuses_the_whole_batch(plant, event):
    claim(plant)
    before = rows()
    response = send(plant, {"type": "begin_attempt", "number": 1}, {"type": "beat"}, event)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_request"
    assert "events[2]" in response.json()["error"]["message"]
    assert rows() == before


@pytest.mark.parametrize(
    "body",
    [{"events": []}, {"holder": "", "events": []}, {"holder": HOLDER}, {"holder": HOLDER, "events": {}}]
    + [{"holder": HOLDER, "events": [], "extra": 1}, {"holder": "h" * 201, "events": []}],
)
def test_a_batch_needs_a_holder_and_a_list_of_events(plant, body):
    response = post(plant.client, f"{API}/jobs/{plant.job.pk}/events", body)
    assert response.status_code == 400


def test_a_batch_has_at_most_100_events(plant):
    claim(plant)
    assert send(plant, *[{"type": "beat"}] * 100).json()["applied"] == 100
    response = send(plant, *[{"type": "beat"}] * 101)
    assert response.status_code == 400 and "at most 100" in response.json()["error"]["message"]


# --- the job read back ---------------------------------------------------------------------------------


def test_the_job_as_the_container_phase_reads_it(plant):
    claim(plant)
    send(plant, {"type": "begin_attempt", "number": 1})
    body = plant.client.get(f"{API}/jobs/{plant.job.pk}", {"holder": HOLDER}).json()
    instance = ContainerInstance.objects.get(pk=plant.instance.pk)
    expected_hash = build_spec(spec_values(instance), name="web").settings_hash("docker.io/team/app:1")
    assert body["job"] == plant.job.pk and body["state"] == "running" and body["held"] is True
    assert body["cancel_requested"] is False and body["message"] == "Attempt 1: contacting the registry"
    assert body["reference"] == "docker.io/team/app:1" and body["settings_hash"] == expected_hash
    assert body["instance"]["id"] == plant.instance.pk and body["instance"]["name"] == "web"
    assert plant.client.get(f"{API}/jobs/{plant.job.pk}", {"holder": OTHER_HOLDER}).json()["held"] is False
    assert plant.client.get(f"{API}/jobs/{plant.job.pk}").json()["held"] is None
    assert plant.client.get(f"{API}/jobs/{plant.job.pk}", {"worker": "x"}).status_code == 400


def test_the_claim_and_a_batch_take_a_bounded_number_of_queries(plant):
    with CaptureQueriesContext(connection) as claimed:
        claim(plant)
    with CaptureQueriesContext(connection) as batch:
        send(plant, {"type": "begin_attempt", "number": 1}, {"type": "progress", **SNAPSHOT})
    assert len(claimed) <= 6 and len(batch) <= 10, (len(claimed), len(batch))


# --- scope while a job runs ------------------------------------------------------------------------------


def test_another_gateway_cannot_declare_a_holder_of_plant_a_gone(plant, other):
    claim(plant)
    send(plant, {"type": "begin_attempt", "number": 1})
    before = rows()
    response = post(other.client, f"{API}/jobs/{plant.job.pk}/claim", {"holder": "x", "gone_holder": HOLDER})
    assert response.status_code == 404
    assert rows() == before


def test_a_job_whose_instance_moved_away_is_no_longer_the_old_gateways(plant, other):
    claim(plant)
    send(plant, {"type": "begin_attempt", "number": 1})
    ContainerInstance.objects.filter(pk=plant.instance.pk).update(gateway=other.gateway, name="moved")
    before = rows()
    # The old agent stops (404, as for a job that is gone); the new gateway's sweep takes the job once stale.
    assert send(plant, {"type": "progress", **SNAPSHOT}).status_code == 404
    assert plant.client.get(f"{API}/jobs/{plant.job.pk}").status_code == 404
    assert rows() == before

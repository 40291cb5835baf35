"""The agent API's control requests: a take hands the secrets over once, an answer closes the request."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from orchestrator.models import ContainerInstance, ControlRequest

from . import test_agent_api as base
from .test_agent_api import API, post, rows

# The shared fixtures (a module's fixtures are found by name, so they are bound here).
plant, other, sent = base.plant, base.other, base.sent

PASSWORD = "typed-Check-Pw-5150"


def raw_secrets(request_id) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT secrets FROM orchestrator_controlrequest WHERE id = %s", [request_id.hex])
        return cursor.fetchone()[0]


def take(world, request_id):
    return post(world.client, f"{API}/control/{request_id}/take")


def answer(world, request_id, data):
    return post(world.client, f"{API}/control/{request_id}/answer", {"answer": data})


@pytest.fixture
def check(plant):
    return ControlRequest.objects.create(
        gateway=plant.gateway,
        kind="check",
        payload={"reference": "registry.example.com/team/app:1", "username": "me"},
        secrets=json.dumps({"password": PASSWORD}),
    )


def test_a_take_hands_the_secrets_over_once_and_wipes_them(plant, check, caplog):
    caplog.set_level(logging.DEBUG)
    assert raw_secrets(check.pk) and PASSWORD not in raw_secrets(check.pk)  # encrypted while it waits
    response = take(plant, check.pk)
    assert response.status_code == 200, response.content
    assert response.json() == {
        "id": str(check.pk),
        "kind": "check",
        "payload": {"reference": "registry.example.com/team/app:1", "username": "me"},
        "secrets": {"password": PASSWORD},
        "instance": None,
    }
    check.refresh_from_db()
    assert check.state == ControlRequest.State.TAKEN and check.secrets == "" and raw_secrets(check.pk) == ""
    assert PASSWORD not in caplog.text

    again = take(plant, check.pk)
    assert again.status_code == 409 and again.json()["error"]["code"] == "taken"
    assert PASSWORD not in again.content.decode()


def test_a_take_of_an_instances_request_carries_its_document(plant):
    document = take(plant, plant.request.pk).json()["instance"]
    assert document["id"] == plant.instance.pk and document["name"] == "web"


def test_an_instance_moved_to_another_gateway_is_not_in_the_take(plant, other):
    ContainerInstance.objects.filter(pk=plant.instance.pk).update(gateway=other.gateway, name="moved")
    body = take(plant, plant.request.pk).json()
    assert body["kind"] == "stop" and body["instance"] is None


def test_a_request_too_old_when_taken_is_marked_expired_and_answered_410(plant, check, settings):
    settings.CONTROL_EXPIRE_SECONDS = 120
    ControlRequest.objects.filter(pk=check.pk).update(created_at=timezone.now() - timedelta(seconds=121))
    response = take(plant, check.pk)
    assert response.status_code == 410 and response.json()["error"]["code"] == "expired"
    assert PASSWORD not in response.content.decode()
    check.refresh_from_db()
    assert check.state == ControlRequest.State.EXPIRED and check.secrets == ""
    assert check.answer["error"]["code"] == "expired"
    assert take(plant, check.pk).status_code == 410
    assert answer(plant, check.pk, {"message": "late"}).status_code == 410


def test_another_gateways_request_stays_as_it_is(plant, other, check):
    before = rows()
    assert take(other, check.pk).status_code == 404
    assert answer(other, plant.taken.pk, {"message": "hijacked"}).status_code == 404
    assert rows() == before
    assert raw_secrets(check.pk)


def test_an_answer_closes_a_taken_request(plant, check):
    take(plant, check.pk)
    data = {"access": True, "digest": "sha256:" + "a" * 64, "platforms": ["linux/amd64"], "error": None}
    response = answer(plant, check.pk, data)
    assert response.status_code == 200 and response.json() == {"ok": True}
    check.refresh_from_db()
    assert check.state == ControlRequest.State.DONE and check.answer == data and check.answered_at
    again = answer(plant, check.pk, {"access": False})
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_taken"
    check.refresh_from_db()
    assert check.answer == data


def test_a_pending_request_cannot_be_answered_before_it_is_taken(plant):
    response = answer(plant, plant.request.pk, {"message": "done"})
    assert response.status_code == 409
    assert ControlRequest.objects.get(pk=plant.request.pk).state == ControlRequest.State.PENDING


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"answer": "done"},
        {"answer": {"logs": "x" * (300 * 1024)}},
        {"answer": {"logs": "nul \u0000"}},
        {"answer": {"bad\u0000key": 1}},
        {"answer": {"deep": json.loads("[" * 30 + "]" * 30)}},
        {"answer": {}, "extra": True},
    ],
    ids=["missing", "not-an-object", "too-big", "nul", "nul-key", "too-deep", "extra-field"],
)
def test_a_bad_answer_is_400_and_the_request_stays_taken(plant, body):
    response = post(plant.client, f"{API}/control/{plant.taken.pk}/answer", body)
    assert response.status_code == 400, response.content
    row = ControlRequest.objects.get(pk=plant.taken.pk)
    assert row.state == ControlRequest.State.TAKEN and row.answer is None


def test_an_output_answer_of_64_kib_fits(plant):
    logs = "line of output\n" * (64 * 1024 // 15)
    assert answer(plant, plant.taken.pk, {"logs": logs}).status_code == 200
    assert ControlRequest.objects.get(pk=plant.taken.pk).answer == {"logs": logs}


def test_an_unknown_request_is_404(plant):
    assert take(plant, "6f1f1c38-4b7e-4d7d-9f43-2d6f3f0c9d11").status_code == 404
    assert answer(plant, "6f1f1c38-4b7e-4d7d-9f43-2d6f3f0c9d11", {}).status_code == 404

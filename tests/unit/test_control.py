"""Requests from the web to a gateway's agent: a bounded wait, the answer later, secrets encrypted and wiped.

The agent's side is its real code (``run_request``); only the broker between is
left out (see the ``answering_agent`` fixture). End to end, with a real agent
and daemon, in tests/e2e/test_check.py and test_containers.py.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from types import SimpleNamespace

from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from orchestrator.control.ask import ask
from orchestrator.control.consumer import run_request
from orchestrator.models import ContainerInstance, ControlRequest, Gateway

from .form_data import instance_form

PASSWORD = "control-Pw-4711"


def raw_secrets(request_id) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT secrets FROM orchestrator_controlrequest WHERE id = %s", [request_id.hex])
        return cursor.fetchone()[0]


def test_a_late_answer_reaches_the_check_button_by_polling(answering_agent, operator_client, settings, operator):
    settings.CONTROL_WAIT_SECONDS = 0.2
    answering_agent.delay = 1.0
    response = operator_client.post(
        reverse("registry-check"), instance_form(registry_username="me", registry_password=PASSWORD)
    )
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["pending"] is True and "has not answered within 0.2 s" in body["message"]
    request = ControlRequest.objects.get()
    # Encrypted while it waits for the agent, and only there.
    assert PASSWORD not in raw_secrets(request.pk) and raw_secrets(request.pk)
    assert PASSWORD not in response.content.decode()

    deadline = time.monotonic() + 20
    while True:
        answer = operator_client.get(body["poll_url"])
        if answer.status_code == 200 or time.monotonic() > deadline:
            break
        assert answer.status_code == 202 and answer.json()["pending"] is True
    assert answer.status_code == 200, answer.content
    assert answer.json()["error"]["code"] == "daemon_unreachable"  # the agent's daemon, not the web's
    request.refresh_from_db()
    assert request.state == ControlRequest.State.DONE and request.secrets == ""
    assert raw_secrets(request.pk) == ""

    # Someone else's check is not theirs to read.
    other_user = type(operator).objects.create_user("other-op")
    other_user.groups.set(operator.groups.all())
    other = Client()
    other.force_login(other_user)
    assert other.get(body["poll_url"]).status_code == 404


def test_a_save_that_the_agent_answers_late_warns_and_the_answer_shows_on_the_instance_page(
    answering_agent, operator_client, settings
):
    settings.CONTROL_WAIT_SECONDS = 0.2
    answering_agent.delay = 1.0
    response = operator_client.post(reverse("instance-create"), instance_form(), follow=True)
    assert "The image is not checked yet" in response.content.decode()
    instance = ContainerInstance.objects.get(name="web")
    request = ControlRequest.objects.get()
    assert request.instance == instance  # asked before the instance existed, linked when it was saved
    for thread in answering_agent.threads:
        thread.join(timeout=20)
    page = operator_client.get(instance.get_absolute_url()).content.decode()
    assert 'id="last-check"' in page and "daemon_unreachable" in page


def test_an_offline_gateway_is_not_asked_and_the_page_says_so(db, operator, settings):
    Gateway.objects.filter(name="local").update(last_seen=timezone.now() - timedelta(minutes=3))
    reply = ask(Gateway.objects.get(name="local"), "check", user=operator, payload={"reference": "x"})
    assert reply.pending and reply.request is None
    assert reply.note == "The gateway local is offline (its agent last reported 3\xa0minutes ago)."
    assert not ControlRequest.objects.exists()


def test_no_request_leaves_from_inside_a_transaction(answering_agent):
    with transaction.atomic():
        reply = ask(Gateway.objects.get(name="local"), "check", payload={"reference": "x"})
    assert reply.pending and reply.request is None and not ControlRequest.objects.exists()
    assert answering_agent.sent == []


def test_an_old_request_is_not_carried_out(answering_agent):
    instance = ContainerInstance.objects.create(name="web", image_name="busybox", enabled=True)
    request = ControlRequest.objects.create(gateway=instance.gateway, instance=instance, kind="stop")
    ControlRequest.objects.filter(pk=request.pk).update(created_at=timezone.now() - timedelta(minutes=10))
    run_request(str(request.pk))
    request.refresh_from_db()
    assert request.state == ControlRequest.State.EXPIRED
    assert request.answer["error"]["code"] == "expired"


def test_an_agent_does_not_take_another_gateway_s_request(answering_agent):
    other = Gateway.objects.create(name="plant-2")
    request = ControlRequest.objects.create(gateway=other, kind="check", secrets='{"password": "x"}')
    run_request(str(request.pk))  # with local's token: the console answers 404
    request.refresh_from_db()
    assert request.state == ControlRequest.State.PENDING and request.answer is None
    assert request.secrets == '{"password": "x"}'  # still there for its own agent, still encrypted


def test_aws_access_keys_stay_in_the_console_the_agent_gets_only_the_ecr_password(
    answering_agent, operator_client, settings, monkeypatch
):
    settings.CONTROL_WAIT_SECONDS = 0.2
    answering_agent.delay = 1.0
    now = timezone.now()
    made = SimpleNamespace(password="ecr-password-for-one-check", fetched_at=now, expires_at=now + timedelta(hours=12))
    monkeypatch.setattr("orchestrator.pulls.credentials.fetch_ecr_password", lambda host, **keys: made)
    ecr = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    form = instance_form(
        image_name=f"{ecr}/team/app",
        registry_url=ecr,
        aws_auth="keys",
        aws_access_key_id="AKIAEXAMPLEKEY",
        aws_secret_access_key="aws-secret-stays-home",
    )
    assert operator_client.post(reverse("registry-check"), form).status_code == 202
    sent = json.loads(ControlRequest.objects.get().secrets)  # before the agent takes it
    assert sent == {"password": "ecr-password-for-one-check"}
    assert "aws-secret-stays-home" not in json.dumps(ControlRequest.objects.values().get(), default=str)

"""Gateways: the model, their tokens, the CLI, routing to their queues, their pages, and a silent agent."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from types import SimpleNamespace

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from orchestrator.gateways import actions
from orchestrator.gateways.heartbeat import Heartbeat
from orchestrator.gateways.tokens import hash_token
from orchestrator.models import ContainerInstance, Gateway, PullJob
from orchestrator.pulls.actions import dispatch

from .form_data import instance_form

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    """The tasks sent, by name and queue (the broker itself is tested end to end)."""
    calls = []

    def send_task(name, args, queue, retry, countdown=None, time_limit=None):
        calls.append((name, args, queue))

    monkeypatch.setattr("celery.current_app.send_task", send_task)
    return calls


def test_a_new_console_has_the_gateway_local_and_instances_go_there():
    assert list(Gateway.objects.values_list("name", flat=True)) == ["local"]
    instance = ContainerInstance.objects.create(name="web", image_name="busybox")
    assert instance.gateway.name == "local"


def test_adding_a_gateway_prints_its_token_once_and_keeps_only_a_hash():
    out = StringIO()
    call_command("gateway", "add", "plant-3", stdout=out)
    token = out.getvalue().splitlines()[1]
    gateway = Gateway.objects.get(name="plant-3")
    assert token.startswith("gwt_") and token not in gateway.token_hash
    assert gateway.token_hash == hash_token(token)
    assert actions.find_by_token(token) == gateway
    assert "python manage.py agent" in out.getvalue()


@pytest.mark.parametrize("name", ["Plant", "-a", "a_b", "x" * 64, "", "add"])
def test_a_gateway_name_must_fit_a_queue_name(name):
    with pytest.raises(CommandError):
        call_command("gateway", "add", name, stdout=StringIO())


def test_a_rotated_token_is_refused_at_once():
    gateway, old = actions.add_gateway("plant-4")
    new = actions.rotate_token("plant-4")
    assert actions.find_by_token(old) is None
    assert actions.find_by_token(new) == gateway
    assert actions.find_by_token("") is None and actions.find_by_token("gwt_" + "x" * 43) is None


def test_a_gateway_with_instances_cannot_be_removed():
    gateway, _ = actions.add_gateway("plant-5")
    ContainerInstance.objects.create(name="web", image_name="busybox", gateway=gateway)
    with pytest.raises(CommandError, match="1 instance"):
        call_command("gateway", "remove", "plant-5", stdout=StringIO())
    ContainerInstance.objects.filter(gateway=gateway).delete()
    call_command("gateway", "remove", "plant-5", stdout=StringIO())
    assert not Gateway.objects.filter(name="plant-5").exists()


def test_the_agent_refuses_a_token_it_does_not_know_without_echoing_it(monkeypatch):
    monkeypatch.setenv("GATEWAY_TOKEN", "gwt_not-a-real-token")
    with pytest.raises(CommandError) as raised:
        call_command("agent")
    assert "gwt_not-a-real-token" not in str(raised.value)


def test_container_names_are_unique_per_gateway_not_globally(operator_client, settings):
    settings.CHECK_IMAGE_ON_SAVE = False
    other, _ = actions.add_gateway("plant-6")
    assert operator_client.post(reverse("instance-create"), instance_form()).status_code == 302
    again = operator_client.post(reverse("instance-create"), instance_form())
    assert again.status_code == 200 and again.context["form"].errors
    elsewhere = operator_client.post(reverse("instance-create"), instance_form(gateway=other.pk))
    assert elsewhere.status_code == 302
    assert ContainerInstance.objects.filter(name="web").count() == 2


def test_a_pull_is_sent_to_its_own_gateway_s_queue(sent):
    gateway, _ = actions.add_gateway("plant-7")
    instance = ContainerInstance.objects.create(name="web", image_name="busybox", gateway=gateway)
    job = PullJob.objects.create(instance=instance, reference="docker.io/library/busybox:latest")
    assert dispatch(job.pk)
    assert sent == [("orchestrator.pull_image", (job.pk,), "gw.plant-7")]


def test_moving_an_instance_removes_its_container_from_the_old_gateway(
    operator_client, settings, sent, django_capture_on_commit_callbacks
):
    settings.CHECK_IMAGE_ON_SAVE = False
    new, _ = actions.add_gateway("plant-8")
    instance = ContainerInstance.objects.create(name="web", image_name="myuser/myapp", image_tag="1.2", enabled=False)
    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(reverse("instance-edit", args=[instance.pk]), instance_form(gateway=new.pk))
    assert response.status_code == 302, response.context["form"].errors
    # On the old gateway's pull queue, where Celery's retries are (the control queue is for what pages wait on).
    assert ("orchestrator.converge_instance", (instance.pk, "local"), "gw.local") in sent


def test_a_move_ends_a_queued_pull_and_the_next_one_goes_to_the_new_gateway(
    operator_client, settings, sent, django_capture_on_commit_callbacks
):
    settings.CHECK_IMAGE_ON_SAVE = False
    new, _ = actions.add_gateway("plant-8")
    instance = ContainerInstance.objects.create(name="web", image_name="myuser/myapp", image_tag="1.2", enabled=True)
    waiting = PullJob.objects.create(instance=instance, reference=instance.pull_reference)
    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(
            reverse("instance-edit", args=[instance.pk]), instance_form(gateway=new.pk, enabled="on")
        )
    assert response.status_code == 302, response.context["form"].errors
    waiting.refresh_from_db()
    assert waiting.state == PullJob.State.CANCELLED  # its message was on gw.local
    fresh = PullJob.objects.exclude(pk=waiting.pk).get()
    assert fresh.state == PullJob.State.QUEUED
    assert ("orchestrator.pull_image", (fresh.pk,), "gw.plant-8") in sent


def test_an_instance_whose_pull_runs_cannot_move(operator_client, settings):
    settings.CHECK_IMAGE_ON_SAVE = False
    new, _ = actions.add_gateway("plant-8")
    instance = ContainerInstance.objects.create(name="web", image_name="myuser/myapp", image_tag="1.2", enabled=True)
    PullJob.objects.create(instance=instance, reference=instance.pull_reference, state=PullJob.State.RUNNING)
    response = operator_client.post(
        reverse("instance-edit", args=[instance.pk]), instance_form(gateway=new.pk, enabled="on")
    )
    assert response.status_code == 200
    assert "A pull of this instance is running on local" in response.context["form"].errors["gateway"][0]
    instance.refresh_from_db()
    assert instance.gateway.name == "local"


def test_the_gateways_page_and_json_show_state_and_facts(viewer_client):
    plant, _ = actions.add_gateway("plant-9")
    actions.beat("plant-9", {"platform": "linux/arm64", "docker_version": "27.1", "cpus": 4})
    ContainerInstance.objects.create(name="web", image_name="busybox", gateway=plant)
    data = viewer_client.get(reverse("gateway-json")).json()["gateways"]
    by_name = {gateway["name"]: gateway for gateway in data}
    assert by_name["plant-9"]["online"] and by_name["plant-9"]["platform"] == "linux/arm64"
    assert by_name["plant-9"]["queued"] == 0 and by_name["plant-9"]["running"] == 0
    assert by_name["local"]["online"] is False and by_name["local"]["last_seen"] is None
    offline = viewer_client.get(reverse("gateway-json"), {"state": "offline"}).json()["gateways"]
    assert [gateway["name"] for gateway in offline] == ["local"]
    page = viewer_client.get(reverse("gateway-list")).content.decode()
    assert "plant-9" in page and "linux/arm64" in page and "never seen" in page


def test_the_gateways_json_makes_the_same_queries_for_one_or_many_gateways(viewer_client):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert viewer_client.get(reverse("gateway-json")).status_code == 200
        return len(captured)

    few = queries()
    for number in range(20):
        actions.add_gateway(f"many-{number}")
    assert queries() == few


def test_only_admins_add_gateways_on_the_page(operator_client, admin_client):
    assert operator_client.post(reverse("gateway-add"), {"name": "plant-10"}).status_code == 403
    response = admin_client.post(reverse("gateway-add"), {"name": "plant-10"})
    assert response.status_code == 201
    token = response.context["token"]
    assert actions.find_by_token(token).name == "plant-10"


def test_a_silent_agent_shows_on_the_pull_without_any_agent_alive():
    instance = ContainerInstance.objects.create(name="web", image_name="busybox")
    job = PullJob.objects.create(instance=instance, reference="docker.io/library/busybox:latest", state="running")
    Gateway.objects.filter(name="local").update(last_seen=timezone.now() - timedelta(minutes=3))
    data = PullJob.objects.select_related("instance__gateway").get(pk=job.pk).as_json()
    assert data["gateway"] == "local" and data["agent_lost"] is True
    assert "stopped reporting (last seen 3\u00a0minutes ago)" in data["gateway_note"]
    Gateway.objects.filter(name="local").update(last_seen=timezone.now())
    assert PullJob.objects.get(pk=job.pk).as_json()["agent_lost"] is False


def test_a_queued_pull_on_an_offline_gateway_says_what_it_waits_for():
    instance = ContainerInstance.objects.create(name="web", image_name="busybox")
    job = PullJob.objects.create(instance=instance, reference="docker.io/library/busybox:latest")
    assert job.as_json()["gateway_note"] == "Queued: waiting for gateway local (last seen never)."


def test_the_heartbeat_reports_a_daemon_that_does_not_answer(agent_console, settings):
    settings.DOCKER_HOST = "unix:///nonexistent/docker.sock"
    app = SimpleNamespace(conf={"console_gateway": "local"})
    beat = Heartbeat(SimpleNamespace(app=app, concurrency=8, steps=[]))
    assert beat.beat_once()
    gateway = Gateway.objects.get(name="local")
    assert gateway.online and gateway.facts["concurrency"] == 8
    assert "docker_error" in gateway.facts and gateway.facts["agent_version"]


def test_manage_py_pull_asks_which_gateway_when_a_name_is_on_several():
    plant, _ = actions.add_gateway("plant-11")
    ContainerInstance.objects.create(name="web", image_name="busybox")
    ContainerInstance.objects.create(name="web", image_name="busybox", gateway=plant)
    with pytest.raises(CommandError, match=r"several gateways \(local, plant-11\)"):
        call_command("pull", "web", stdout=StringIO())
    out = StringIO()
    call_command("pull", "web", "--gateway", "plant-11", stdout=out)
    assert PullJob.objects.get().instance.gateway == plant and "Queued pull" in out.getvalue()


def test_health_judges_the_gateways_by_their_heartbeats_without_a_docker_client(viewer_client, settings):
    settings.DOCKER_HOST = "unix:///nonexistent/docker.sock"  # the web never asks a daemon
    down = viewer_client.get(reverse("healthz")).json()["checks"]["gateways"]
    assert down["ok"] is False and "no gateway's agent is reporting (1 gateway)" in down["detail"]
    actions.beat("local", {})
    actions.add_gateway("plant-12")
    up = viewer_client.get(reverse("healthz")).json()["checks"]["gateways"]
    assert up == {**up, "ok": True, "detail": "1 of 2 gateways online"}

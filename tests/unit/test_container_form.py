"""The container fields of the instance form, through the real views (no worker, no daemon needed)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from orchestrator.models import ContainerInstance, ContainerState, Gateway, PullJob

from .form_data import instance_form

pytestmark = pytest.mark.django_db

VALID = instance_form()


@pytest.fixture(autouse=True)
def no_registry_check(settings):
    settings.CHECK_IMAGE_ON_SAVE = False


def post(client, data, url=None):
    return client.post(url or reverse("instance-create"), data)


def test_container_fields_are_saved_as_typed(admin_client):
    # An admin: privileged mode, a device, a host path and a runtime need host access (test_host_access.py).
    data = {
        **VALID,
        "internal_ports": "80, 53:udp",
        "external_ports": "8080, 5353",
        "env": "A=1,2\r\nB=x",
        "entrypoint": "sh,-c,sleep 5",
        "memory": "256m",
        "cpus": "1.5",
        "gpus": "all",
        "volumes": "/srv/a:/a:ro",
        "devices": "/dev/ttyUSB0",
        "runtime": "nvidia",
        "network_mode": "bridge",
        "logger_type": "LOCAL",
        "logger_parameters": "max-size=10m",
        "restart_on_failure": "on",
        "privileged": "on",
        "digest_pin": "SHA256:" + "A" * 64,
    }
    response = post(admin_client, data)
    assert response.status_code == 302, response.context["form"].errors
    instance = ContainerInstance.objects.get()
    assert instance.internal_ports == "80, 53:udp" and instance.env == "A=1,2\nB=x"
    assert instance.restart_on_failure and instance.privileged and instance.logger_type == "LOCAL"
    assert instance.digest_pin == "sha256:" + "a" * 64


def test_kura_defaults_apply_when_the_container_fields_are_left_out(operator_client):
    assert post(operator_client, VALID).status_code == 302
    instance = ContainerInstance.objects.get()
    assert instance.logger_type == "DEFAULT" and instance.network_mode == "" and instance.internal_ports == ""
    assert not instance.privileged and not instance.restart_on_failure and instance.digest_pin == ""


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"internal_ports": "80, 443", "external_ports": "8080"}, "external_ports", "one external port for each"),
        ({"internal_ports": "http"}, "internal_ports", "not a port number"),
        ({"env": "NOPE"}, "env", "not NAME=value"),
        ({"memory": "1.5g"}, "memory", "not a memory size"),
        ({"cpus": "1,5"}, "cpus", "Use a dot"),
        ({"gpus": "0"}, "gpus", "'all' or a whole number"),
        ({"volumes": "/srv/data"}, "volumes", "gateway-path:container-path"),
        ({"devices": "ttyUSB0"}, "devices", "absolute device path"),
        ({"runtime": "a b"}, "runtime", "not a runtime name"),
        ({"network_mode": "Host"}, "network_mode", "lowercase"),
        ({"network_mode": "container:web"}, "network_mode", "its own network"),
        ({"network_mode": "host", "internal_ports": "80", "external_ports": "8080"}, "network_mode", "host mode"),
        ({"logger_type": "DB"}, "logger_type", "Select a valid choice"),
        ({"logger_type": "NONE", "logger_parameters": "max-size=1m"}, "logger_parameters", "takes no options"),
        ({"logger_parameters": "max-size"}, "logger_parameters", "not option=value"),
        ({"digest_pin": "sha256:123"}, "digest_pin", "64 hexadecimal"),
    ],
)
def test_a_bad_container_field_is_a_field_error_in_an_open_section(operator_client, changes, field, words):
    response = post(operator_client, {**VALID, **changes})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert words in " ".join(errors[field]), errors
    assert not ContainerInstance.objects.exists()
    page = response.content.decode()
    # The section holding the error is unfolded and says so; the others stay folded.
    assert "1 to fix" in page
    # "Image and registry" (always open) and the one with the error.
    assert page.count('class="collapse show') == (1 if field == "digest_pin" else 2)


def test_the_form_groups_the_fields_in_folded_sections(operator_client):
    page = operator_client.get(reverse("instance-create")).content.decode()
    for legend in (
        "Image and registry",
        "Download",
        "Command and environment",
        "Networking",
        "Resources",
        "Storage and devices",
        "Logging",
    ):
        assert legend in page
    assert page.count('data-bs-toggle="collapse" data-bs-target="#section-') == 7
    assert page.count('class="collapse show') == 1
    for name in (
        "internal_ports",
        "external_ports",
        "privileged",
        "env",
        "entrypoint",
        "memory",
        "cpus",
        "gpus",
        "volumes",
        "devices",
        "runtime",
        "network_mode",
        "logger_type",
        "logger_parameters",
        "restart_on_failure",
        "digest_pin",
    ):
        assert f'name="{name}"' in page
    assert "style=" not in page  # the CSP allows no inline styles


def test_a_section_shows_how_many_of_its_fields_are_set(operator_client):
    post(operator_client, {**VALID, "memory": "64m", "cpus": "1"})
    instance = ContainerInstance.objects.get()
    page = operator_client.get(reverse("instance-edit", args=[instance.pk])).content.decode()
    resources = page[page.index('id="section-resources"') :]
    assert "2 set" in resources[: resources.index("</legend>")]


def test_disabling_an_enabled_instance_asks_for_confirmation(operator_client):
    post(operator_client, {**VALID, "enabled": "on"})
    instance = ContainerInstance.objects.get()
    url = reverse("instance-edit", args=[instance.pk])
    # Editing without disabling asks nothing.
    page = operator_client.get(url).content.decode()
    assert 'name="confirm_disable"' not in page
    response = post(operator_client, {**VALID, "enabled": ""}, url)
    assert response.status_code == 200
    assert "Tick the box to confirm" in response.context["form"].errors["confirm_disable"][0]
    assert 'name="confirm_disable"' in response.content.decode()
    assert ContainerInstance.objects.get().enabled
    response = post(operator_client, {**VALID, "enabled": "", "confirm_disable": "on"}, url)
    assert response.status_code == 302
    assert not ContainerInstance.objects.get().enabled
    messages = [str(m) for m in response.wsgi_request._messages]
    assert any("Its container is being stopped and removed; the image stays." in m for m in messages)


def test_a_disabled_instance_saves_without_confirmation(operator_client):
    post(operator_client, VALID)
    instance = ContainerInstance.objects.get()
    response = post(operator_client, {**VALID, "memory": "64m"}, reverse("instance-edit", args=[instance.pk]))
    assert response.status_code == 302


def test_container_buttons_need_the_pull_permission_and_post(viewer_client, operator_client):
    post(operator_client, VALID)
    instance = ContainerInstance.objects.get()
    url = reverse("container-action", args=[instance.pk, "stop"])
    assert viewer_client.post(url).status_code == 403
    assert operator_client.get(url).status_code == 405
    assert operator_client.post(reverse("container-action", args=[instance.pk, "nope"])).status_code == 404


def test_the_container_fragment_shows_what_the_agent_reported_and_never_asks_a_daemon(operator_client, settings):
    settings.DOCKER_HOST = "unix:///nonexistent/docker.sock"
    post(operator_client, VALID)
    instance = ContainerInstance.objects.get()
    url = reverse("instance-container", args=[instance.pk])
    assert "has not reported this container yet" in operator_client.get(url).content.decode()
    Gateway.objects.filter(name="local").update(last_seen=timezone.now())
    ContainerState.objects.create(
        instance=instance,
        gateway=instance.gateway,
        exists=True,
        container_id="c0ffee" * 10,
        state="exited",
        exit_code=3,
        restart_count=2,
        reported_at=timezone.now(),
    )
    page = operator_client.get(url).content.decode()
    assert 'data-state="exited"' in page and ">3<" in page and "c0ffeec0ffee" in page
    assert "is offline" not in page
    Gateway.objects.filter(name="local").update(last_seen=timezone.now() - timedelta(hours=1))
    page = operator_client.get(url).content.decode()
    assert "The gateway local is offline" in page and 'data-state="exited"' in page


def test_a_container_action_on_an_offline_gateway_says_so_at_once(operator_client):
    post(operator_client, {**VALID, "enabled": "on"})
    instance = ContainerInstance.objects.get()
    response = operator_client.post(reverse("container-action", args=[instance.pk, "stop"]), follow=True)
    assert response.status_code == 200
    assert "The gateway local is offline" in response.content.decode()


def test_the_pull_json_has_the_container_phase_keys(operator_client):
    post(operator_client, {**VALID, "enabled": "on"})
    job = PullJob.objects.get()
    data = operator_client.get(reverse("pull-json", args=[job.pk])).json()
    assert data["container_state"] is None and data["container_id"] is None and data["container_error"] is None
    assert data["state"] == "queued"

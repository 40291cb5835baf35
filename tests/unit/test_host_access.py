"""Host access is an administrator's decision, inside allowlists that bind everyone (issue 14, second hole)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from orchestrator.containers.spec import build_spec
from orchestrator.models import ContainerInstance
from orchestrator.security.host_access import Policy, normalize, refusals_outside_policy, uses

from .form_data import instance_form

pytestmark = pytest.mark.django_db

POLICY = Policy(allowed_paths=("/srv/*",), allowed_devices=("/dev/ttyUSB*",))

# Each setting that reaches the gateway, as typed into the form, and the field that answers for it.
DANGEROUS = [
    ("privileged", {"privileged": "on"}),
    ("devices", {"devices": "/dev/ttyUSB0"}),
    ("volumes", {"volumes": "/srv/app/data:/data"}),
    ("network_mode", {"network_mode": "host"}),
    ("network_mode", {"network_mode": "container:vpn"}),
    ("runtime", {"runtime": "nvidia"}),
    ("logger_type", {"logger_type": "GELF", "logger_parameters": "gelf-address=udp://10.0.0.9:12201"}),
    ("logger_type", {"logger_type": "SYSLOG"}),
    ("logger_type", {"logger_type": "LOKI", "logger_parameters": "loki-url=http://10.0.0.9/loki/api/v1/push"}),
]
NEVER = [
    "/",
    "/etc",
    "/etc/",
    "/etc/../etc/shadow",
    "//etc",
    "/srv/../etc",
    "/srv/app/../../proc/1/root",
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/run/../run/containerd/containerd.sock",
    "/sys/firmware",
    "/boot",
    "/var/lib/docker",
    "/var/lib/docker/volumes/x",
    "/dev",
    "/dev/",
]


@pytest.fixture
def allow_srv(settings):
    settings.CONSOLE_ALLOWED_HOST_PATHS = ["/srv/*", "/", "/etc/*", "/var/*", "/*"]  # even '/*' cannot let these in
    settings.CONSOLE_ALLOWED_DEVICES = ["/dev/ttyUSB*", "/dev*", "/*"]
    settings.DOCKER_HOST = "unix:///nonexistent/docker.sock"


def post(client, instance=None, **fields):
    url = reverse("instance-edit", args=[instance.pk]) if instance else reverse("instance-create")
    return client.post(url, instance_form(**fields))


@pytest.mark.parametrize(("field", "typed"), DANGEROUS)
def test_an_operator_cannot_give_a_container_host_access(operator_client, allow_srv, field, typed):
    response = post(operator_client, **typed)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "only an administrator" in " ".join(errors[field]), errors
    assert not ContainerInstance.objects.exists()
    # What was typed stays in the form.
    page = response.content.decode()
    assert all(value in page for key, value in typed.items() if key not in ("privileged", "logger_type"))


@pytest.mark.parametrize(("field", "typed"), DANGEROUS)
def test_an_admin_may_give_host_access_inside_the_allowlists(admin_client, allow_srv, field, typed):
    response = post(admin_client, **typed)
    assert response.status_code == 302, response.context["form"].errors
    assert ContainerInstance.objects.get(name="web")


def test_named_volumes_a_local_logger_and_bridge_need_no_permission(operator_client, allow_srv):
    response = post(
        operator_client,
        volumes="appdata:/data",
        logger_type="JSON_FILE",
        logger_parameters="max-size=10m",
        network_mode="bridge",
        memory="256m",
    )
    assert response.status_code == 302, response.context["form"].errors


@pytest.mark.parametrize("path", NEVER)
def test_these_host_paths_are_refused_even_to_an_admin(admin_client, allow_srv, path):
    response = post(admin_client, volumes=f"{path}:/host")
    assert response.status_code == 200
    assert "is never mounted" in " ".join(response.context["form"].errors["volumes"])


@pytest.mark.parametrize("device", ["/dev/sda", "/dev/mem", "/dev/../etc/shadow", "/srv/disk"])
def test_devices_outside_the_allowlist_are_refused_even_to_an_admin(admin_client, settings, device):
    settings.DOCKER_HOST = "unix:///nonexistent/docker.sock"
    settings.CONSOLE_ALLOWED_DEVICES = ["/dev/ttyUSB*"]
    response = post(admin_client, devices=device)
    assert response.status_code == 200
    errors = " ".join(response.context["form"].errors["devices"])
    assert "CONSOLE_ALLOWED_DEVICES" in errors or "is never passed" in errors


def test_a_host_path_outside_the_allowlist_names_the_setting(admin_client, settings):
    settings.DOCKER_HOST = "unix:///nonexistent/docker.sock"
    settings.CONSOLE_ALLOWED_HOST_PATHS = ["/srv/*"]
    response = post(admin_client, volumes="/opt/app:/app")
    assert "CONSOLE_ALLOWED_HOST_PATHS: /srv/*" in " ".join(response.context["form"].errors["volumes"])


def test_an_operator_may_edit_other_fields_of_a_privileged_instance_but_not_its_image(operator_client, allow_srv):
    instance = ContainerInstance.objects.create(
        name="web", image_name="myuser/myapp", image_tag="1.2", privileged=True, enabled=False
    )
    kept = post(operator_client, instance, privileged="on", memory="256m")
    assert kept.status_code == 302, kept.context["form"].errors
    for change in ({"image_name": "evil/app"}, {"image_tag": "2"}, {"env": "LD_PRELOAD=/x.so"}, {"entrypoint": "sh"}):
        response = post(operator_client, instance, privileged="on", **change)
        assert response.status_code == 200, change
        field = next(iter(change))
        assert "only an administrator" in " ".join(response.context["form"].errors[field])
    # Taking the access away is always allowed.
    assert post(operator_client, instance, memory="256m").status_code == 302


def test_the_admin_site_applies_the_same_rules(admin_client, allow_srv):
    data = {**instance_form(volumes="/var/run/docker.sock:/var/run/docker.sock"), "aws_auth": "", "_save": "Save"}
    response = admin_client.post(reverse("admin:orchestrator_containerinstance_add"), data)
    assert response.status_code == 200
    assert "is never mounted" in response.content.decode()


def test_paths_are_normalized_before_any_rule():
    assert normalize("//etc") == "/etc"
    assert normalize("/srv//app/../data/") == "/srv/data"
    assert normalize("/srv/app/../../etc/passwd") == "/etc/passwd"
    assert normalize("/") == "/"


def test_what_reaches_the_host_is_named_by_field():
    spec = build_spec(
        {
            "volumes": "/srv/a:/a, named:/b",
            "devices": "/dev/ttyUSB0:/dev/ttyS0",
            "network_mode": "host",
            "privileged": True,
            "logger_type": "LOKI",
            "logger_parameters": "loki-url=http://x",
        }
    )
    assert uses(spec) == {
        "privileged": {"privileged mode"},
        "devices": {"/dev/ttyUSB0"},
        "volumes": {"/srv/a"},
        "network_mode": {"host"},
        "logger_type": {"LOKI"},
    }
    assert uses(build_spec({"logger_type": "LOKI", "logger_parameters": "max-size=1m"})) == {}
    assert refusals_outside_policy(spec, POLICY) == {}

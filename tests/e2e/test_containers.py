"""The container lifecycle end to end: form -> pull -> create/start on the sandboxed dockerd -> stop/disable/delete.

Containers run with network mode none (the sandboxed daemon has no bridge, and
tests never send traffic to container addresses); port settings are checked in
the created container's HostConfig.PortBindings. Every setting is read back
through the Docker SDK, and the memory and CPU limits also from inside the
container (the cgroup files it prints to its output).
"""

from __future__ import annotations

import io
import tarfile
import time

import docker
import pytest
from django.urls import reverse

from orchestrator.containers.daemon import LABEL_DIGEST, LABEL_INSTANCE, LABEL_SETTINGS
from orchestrator.models import ContainerInstance, PullJob

from . import helpers
from .helpers import image_present, make_instance, wait_for_job

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Prints what the tests look for, then waits; exits at once on SIGTERM (a plain `sleep` as PID 1 ignores it).
KEEP_RUNNING = "trap 'exit 0' TERM; while true; do sleep 1; done"
# The limits as the kernel enforces them: cgroup v2 files, or v1 ones on older hosts.
ENTRYPOINT = (
    "sh,-c,env; "
    "echo memory=$(cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes); "
    "echo cpu=$(cat /sys/fs/cgroup/cpu.max 2>/dev/null || "
    "echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)); "
    f"echo written > /data/hello; echo ready; {KEEP_RUNNING}"
)


@pytest.fixture
def api(stack):
    client = docker.APIClient(base_url=stack.docker_host, version="auto", timeout=60)
    yield client
    client.close()


@pytest.fixture(autouse=True)
def no_console_containers(api):
    """Each test starts and ends without containers made by the console (pks repeat between tests)."""

    def clear() -> None:
        for summary in api.containers(all=True, filters={"label": LABEL_INSTANCE}):
            api.remove_container(summary["Id"], force=True)

    clear()
    yield
    clear()


def form_data(stack, name: str, **overrides) -> dict:
    data = {
        **helpers.form_data(stack, name=name),
        "network_mode": "none",
        "entrypoint": f"sh,-c,echo ready; {KEEP_RUNNING}",
        "logger_type": "DEFAULT",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def edit_data(instance: ContainerInstance, **overrides) -> dict:
    """The edit form as a browser would post it back (the stored password stays when left blank)."""
    fields = [
        "name",
        "image_name",
        "image_tag",
        "registry_url",
        "registry_username",
        "download_retries",
        "download_retry_interval",
        "download_timeout",
        "internal_ports",
        "external_ports",
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
        "digest_pin",
    ]
    data = {name: getattr(instance, name) for name in fields}
    for flag in ("enabled", "privileged", "restart_on_failure"):
        if getattr(instance, flag):
            data[flag] = "on"
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def create(client, data: dict) -> PullJob:
    response = client.post(reverse("instance-create"), data)
    assert response.status_code == 302, response.context["form"].errors if response.context else response
    return PullJob.objects.filter(instance__name=data["name"]).order_by("-pk").first()


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s")


def container(api, name: str) -> dict | None:
    try:
        return api.inspect_container(name)
    except docker.errors.NotFound:
        return None


def logs(api, name: str) -> str:
    return api.logs(name, stdout=True, stderr=True).decode()


def test_a_container_starts_with_every_setting_the_form_gave(
    stack, worker, operator_client, admin_client, api, tmp_path, settings
):
    share = tmp_path / "share"
    share.mkdir()
    # A host path and a device: an admin's decision, inside the allowlists (see test_host_access.py).
    settings.CONSOLE_ALLOWED_HOST_PATHS = [f"{share}*"]
    settings.CONSOLE_ALLOWED_DEVICES = ["/dev/null"]
    data = form_data(
        stack,
        "full",
        entrypoint=ENTRYPOINT,
        env="GREETING=hello, world\nLIST=a,b,c\nEMPTY=",
        internal_ports="80, 53:udp",
        external_ports="8080, 5353",
        memory="64m",
        cpus="0.5",
        volumes=f"{share}:/data, {share}:/readonly:ro",
        devices="/dev/null:/dev/xnull:rw",
        logger_type="JSON_FILE",
        logger_parameters="max-size=1m, max-file=2",
        restart_on_failure="on",
    )
    samples: list[dict] = []
    job = wait_for_job(create(admin_client, data).pk, timeout=120, sample=samples.append)
    assert job.state == "succeeded", job.as_json()
    assert job.container_state == "running"
    assert "Container full created and running" in job.message
    # The status page went on past "pulled": it kept polling while the container was created.
    assert any(s["state"] == "running" and s["container_state"] in ("pulled", "created") for s in samples), samples
    assert samples[-1]["container_state"] == "running" and samples[-1]["container_id"] == job.container_id

    info = api.inspect_container("full")
    assert info["Id"] == job.container_id
    assert info["State"]["Running"]
    config, host = info["Config"], info["HostConfig"]
    assert config["Entrypoint"] == ["sh", "-c", ENTRYPOINT.split(",", 2)[2]]
    assert {"GREETING=hello, world", "LIST=a,b,c", "EMPTY="} <= set(config["Env"])
    assert set(config["ExposedPorts"]) == {"80/tcp", "53/udp"}
    assert host["PortBindings"] == {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}],
        "53/udp": [{"HostIp": "", "HostPort": "5353"}],
    }
    assert host["NetworkMode"] == "none"
    assert host["Memory"] == 64 * 1024 * 1024
    assert host["NanoCpus"] == 500_000_000
    assert sorted(host["Binds"]) == sorted([f"{share}:/data", f"{share}:/readonly:ro"])
    assert host["Devices"] == [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/xnull", "CgroupPermissions": "rw"}]
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}}
    assert host["RestartPolicy"]["Name"] == "unless-stopped"
    assert host["Privileged"] is False
    instance = ContainerInstance.objects.get(name="full")
    labels = config["Labels"]
    assert labels[LABEL_INSTANCE] == str(instance.pk)
    assert labels[LABEL_DIGEST] == job.digest
    assert len(labels[LABEL_SETTINGS]) == 32

    # What the program inside saw: the variables (a comma inside a value intact), the limits, the volume.
    output = wait_until(lambda: "ready" in logs(api, "full") and logs(api, "full"), 20, "container output")
    assert "GREETING=hello, world" in output and "LIST=a,b,c" in output
    assert "memory=67108864" in output
    assert "cpu=50000 100000" in output
    assert (share / "hello").read_text() == "written\n"

    # The instance page fragment shows the state the agent reported, and the output the agent was asked
    # for; the JSON says where the container phase is.
    fragment = operator_client.get(reverse("instance-container", args=[instance.pk])).content.decode()
    assert 'id="container-state"' in fragment and ">Running<" in fragment
    assert 'hx-trigger="every 3s"' in fragment
    output = operator_client.get(reverse("instance-logs", args=[instance.pk])).content.decode()
    assert 'id="container-logs"' in output and "LIST=a,b,c" in output
    data = operator_client.get(reverse("pull-json", args=[job.pk])).json()
    assert data["state"] == "succeeded" and data["container_state"] == "running"
    assert data["container_id"] == job.container_id and data["container_error"] is None
    page = operator_client.get(reverse("pull-detail", args=[job.pk])).content.decode()
    assert 'id="container-running"' in page and "hx-get" not in page  # finished: no more polling
    assert stack.registry_password not in page + fragment + str(data)


def test_start_stop_and_restart_buttons_drive_the_container(stack, worker, operator_client, viewer_client, api):
    job = wait_for_job(create(operator_client, form_data(stack, "buttons")).pk, timeout=120)
    assert job.container_state == "running", job.as_json()
    instance = ContainerInstance.objects.get(name="buttons")

    def post(client, action):
        return client.post(reverse("container-action", args=[instance.pk, action]))

    # Viewers see the state but may not act.
    assert viewer_client.get(reverse("instance-container", args=[instance.pk])).status_code == 200
    assert post(viewer_client, "stop").status_code == 403
    assert container(api, "buttons")["State"]["Running"]
    # Buttons are POST only.
    assert operator_client.get(reverse("container-action", args=[instance.pk, "stop"])).status_code == 405
    assert post(operator_client, "explode").status_code == 404

    response = post(operator_client, "stop")
    assert response.status_code == 302 and response["Location"] == instance.get_absolute_url()
    state = container(api, "buttons")["State"]
    assert not state["Running"] and state["ExitCode"] == 0  # the trap ended it cleanly
    fragment = operator_client.get(reverse("instance-container", args=[instance.pk])).content.decode()
    assert ">Exited<" in fragment and 'id="container-exit-code">0<' in fragment

    started_before = container(api, "buttons")["State"]["StartedAt"]
    post(operator_client, "start")
    assert container(api, "buttons")["State"]["Running"]
    post(operator_client, "restart")
    after = container(api, "buttons")["State"]
    assert after["Running"] and after["StartedAt"] != started_before
    assert container(api, "buttons")["Id"] == job.container_id  # the same container throughout

    page = operator_client.get(instance.get_absolute_url(), follow=True).content.decode()
    assert 'id="container-status"' in page and 'hx-trigger="load, every 3s"' in page


def test_a_container_stopped_on_the_host_shows_on_the_console(stack, worker, operator_client, api):
    """Nobody clicks anything: `docker stop` on the gateway itself, and the agent reports it."""
    job = wait_for_job(create(operator_client, form_data(stack, "on-host")).pk, timeout=120)
    assert job.container_state == "running", job.as_json()
    instance = ContainerInstance.objects.get(name="on-host")
    url = reverse("instance-container", args=[instance.pk])
    wait_until(lambda: ">Running<" in operator_client.get(url).content.decode(), 10, "the running state reported")
    api.stop("on-host", timeout=5)
    # The daemon's "die" event reaches the agent at once; its heartbeat's pass would within one beat.
    wait_until(lambda: ">Exited<" in operator_client.get(url).content.decode(), 10, "the stop reported")
    listed = operator_client.get(reverse("instance-list")).content.decode()
    row = listed[listed.index('<tr data-instance="on-host">') :]
    assert ">exited</span>" in row[: row.index("</tr>")]


def test_disabling_asks_first_then_removes_the_container_and_keeps_the_image(stack, worker, operator_client, api):
    job = wait_for_job(create(operator_client, form_data(stack, "to-disable")).pk, timeout=120)
    assert job.container_state == "running", job.as_json()
    instance = ContainerInstance.objects.get(name="to-disable")
    url = reverse("instance-edit", args=[instance.pk])
    unticked = edit_data(instance)
    del unticked["enabled"]

    response = operator_client.post(url, unticked)
    assert response.status_code == 200
    assert "Tick the box to confirm" in response.context["form"].errors["confirm_disable"][0]
    assert ContainerInstance.objects.get(pk=instance.pk).enabled
    assert container(api, "to-disable")["State"]["Running"]

    response = operator_client.post(url, {**unticked, "confirm_disable": "on"})
    assert response.status_code == 302
    assert not ContainerInstance.objects.get(pk=instance.pk).enabled
    wait_until(lambda: container(api, "to-disable") is None, 30, "the container to be removed")
    assert image_present(stack, stack.images["busybox"])
    fragment = operator_client.get(reverse("instance-container", args=[instance.pk])).content.decode()
    assert "The instance is disabled, so it has none." in fragment
    # Start refuses while disabled.
    response = operator_client.post(reverse("container-action", args=[instance.pk, "start"]), follow=True)
    assert "is disabled" in response.content.decode()


def test_deleting_the_instance_removes_its_container_and_keeps_the_image(stack, worker, operator_client, api):
    job = wait_for_job(create(operator_client, form_data(stack, "to-delete")).pk, timeout=120)
    assert job.container_state == "running", job.as_json()
    instance = ContainerInstance.objects.get(name="to-delete")
    confirm = operator_client.get(reverse("instance-delete", args=[instance.pk])).content.decode()
    assert "is stopped and removed" in confirm
    response = operator_client.post(reverse("instance-delete", args=[instance.pk]))
    assert response.status_code == 302
    wait_until(lambda: container(api, "to-delete") is None, 30, "the container to be removed")
    assert image_present(stack, stack.images["busybox"])


def test_editing_recreates_the_container_only_when_its_settings_change(stack, worker, operator_client, api):
    job = wait_for_job(create(operator_client, form_data(stack, "editable", env="MODE=one")).pk, timeout=120)
    assert job.container_state == "running", job.as_json()
    instance = ContainerInstance.objects.get(name="editable")
    url = reverse("instance-edit", args=[instance.pk])
    first_id = job.container_id

    # A download setting does not touch the container.
    assert operator_client.post(url, edit_data(instance, download_timeout=300)).status_code == 302
    job = wait_for_job(PullJob.objects.filter(instance=instance).latest("pk").pk, timeout=120)
    assert job.state == "succeeded" and job.container_id == first_id, job.as_json()
    assert "up to date" in job.message

    # New environment: recreated with it.
    instance.refresh_from_db()
    assert operator_client.post(url, edit_data(instance, env="MODE=two\nEXTRA=x,y")).status_code == 302
    job = wait_for_job(PullJob.objects.filter(instance=instance).latest("pk").pk, timeout=120)
    assert job.state == "succeeded", job.as_json()
    assert job.container_id != first_id and "recreated (new settings)" in job.message
    info = container(api, "editable")
    assert info["Id"] == job.container_id and info["State"]["Running"]
    assert {"MODE=two", "EXTRA=x,y"} <= set(info["Config"]["Env"])
    assert len(api.containers(all=True, filters={"label": f"{LABEL_INSTANCE}={instance.pk}"})) == 1

    # Renamed: the old container goes, a new one with the new name runs.
    instance.refresh_from_db()
    assert operator_client.post(url, edit_data(instance, name="edited")).status_code == 302
    job = wait_for_job(PullJob.objects.filter(instance=instance).latest("pk").pk, timeout=120)
    assert job.state == "succeeded", job.as_json()
    assert container(api, "editable") is None and container(api, "edited")["State"]["Running"]


def _build_and_push(stack, api, target: str, variant: str) -> str:
    """A busybox-based image tagged ``target`` in the local registry; returns its image ID."""
    base = stack.images["busybox"]
    for _ in api.pull(base, stream=True, decode=True, auth_config=stack.auth_config()):
        pass
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        dockerfile = f"FROM {base}\nLABEL variant={variant}\n".encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    context.seek(0)
    for chunk in api.build(fileobj=context, custom_context=True, tag=target, rm=True, decode=True, pull=False):
        assert "error" not in chunk, chunk
    repository, tag = target.rsplit(":", 1)
    for chunk in api.push(repository, tag, stream=True, decode=True, auth_config=stack.auth_config()):
        assert "error" not in chunk, chunk
    return api.inspect_image(target)["Id"]


def test_pull_again_recreates_only_when_the_tag_names_a_new_image(stack, worker, operator_client, api):
    target = f"{stack.registry}/team/mutable:stable"
    first_image = _build_and_push(stack, api, target, "one")
    api.remove_image(target, force=True)
    image, tag = target.rsplit(":", 1)
    job = wait_for_job(create(operator_client, form_data(stack, "mutable", image_name=image, image_tag=tag)).pk, 120)
    assert job.container_state == "running", job.as_json()
    instance = ContainerInstance.objects.get(name="mutable")
    assert container(api, "mutable")["Image"] == first_image

    def pull_again() -> PullJob:
        response = operator_client.post(reverse("instance-pull", args=[instance.pk]))
        assert response.status_code == 302
        return wait_for_job(PullJob.objects.filter(instance=instance).latest("pk").pk, timeout=120)

    # Same image behind the tag: the registry is asked, the container is left running.
    again = pull_again()
    assert again.state == "succeeded" and again.container_id == job.container_id, again.as_json()
    assert again.digest == job.digest and "up to date and running" in again.message

    # Someone pushes a new image under the same tag: Pull again gets it and recreates the container.
    second_image = _build_and_push(stack, api, target, "two")
    assert second_image != first_image
    api.remove_image(target, force=True)  # the gateway still has only the old one
    changed = pull_again()
    assert changed.state == "succeeded", changed.as_json()
    assert changed.digest != job.digest and changed.container_id != job.container_id
    assert "recreated (new image)" in changed.message
    info = container(api, "mutable")
    assert info["Image"] == second_image and info["Config"]["Labels"][LABEL_DIGEST] == changed.digest


def test_a_digest_pin_refuses_another_image_and_runs_the_pinned_one(stack, worker, operator_client, api):
    wrong = "sha256:" + "0" * 64
    job = wait_for_job(create(operator_client, form_data(stack, "pinned", digest_pin=wrong)).pk, timeout=120)
    assert job.state == "failed", job.as_json()
    assert job.error_code == "digest_mismatch" and job.container_state == "failed"
    assert wrong in job.container_error and job.digest in job.container_error
    assert container(api, "pinned") is None
    page = operator_client.get(reverse("pull-detail", args=[job.pk])).content.decode()
    assert "digest_mismatch" in page and "Not created" in page

    instance = ContainerInstance.objects.get(name="pinned")
    url = reverse("instance-edit", args=[instance.pk])
    response = operator_client.post(url, edit_data(instance, digest_pin=job.digest))
    assert response.status_code == 302
    ok = wait_for_job(PullJob.objects.filter(instance=instance).latest("pk").pk, timeout=120)
    assert ok.state == "succeeded" and ok.container_state == "running", ok.as_json()


def test_daemon_refusals_fail_the_job_with_the_daemons_words(stack, worker, api):
    from orchestrator.pulls.actions import queue_pull

    # No GPU in the sandbox: the daemon refuses to start the container.
    gpu = make_instance(stack, name="wants-gpu", network_mode="none", gpus="all", entrypoint="sleep,5")
    job = wait_for_job(queue_pull(gpu)[0].pk, timeout=120)
    assert job.state == "failed" and job.error_code == "container_failed", job.as_json()
    assert "could not select device driver" in job.container_error
    assert job.container_id  # it was created, and is left for inspection
    assert container(api, "wants-gpu")["State"]["Status"] == "created"

    # A program that fails at once.
    crash = make_instance(stack, name="crashes", network_mode="none", entrypoint="sh,-c,echo boom; exit 3")
    job = wait_for_job(queue_pull(crash)[0].pk, timeout=120)
    assert job.state == "failed" and "exit code 3" in job.container_error, job.as_json()
    assert "boom" in logs(api, "crashes")

    # A container of the same name that the console did not make is left alone.
    stranger = api.create_container(
        stack.images["busybox"],
        name="taken",
        entrypoint=["sleep", "60"],
        host_config=api.create_host_config(network_mode="none"),
    )
    try:
        taken = make_instance(stack, name="taken", network_mode="none")
        job = wait_for_job(queue_pull(taken)[0].pk, timeout=120)
        assert job.state == "failed" and "was not made by this console" in job.container_error, job.as_json()
        assert container(api, "taken")["Id"] == stranger["Id"]
    finally:
        api.remove_container(stranger["Id"], force=True)


def test_the_default_network_mode_is_left_to_the_daemon_and_its_missing_bridge_is_said(stack, worker, api):
    from orchestrator.pulls.actions import queue_pull

    instance = make_instance(stack, name="default-net", entrypoint=f"sh,-c,{KEEP_RUNNING}")
    job = wait_for_job(queue_pull(instance)[0].pk, timeout=120)
    assert job.state == "succeeded", job.as_json()
    assert "has no bridge network" in job.message
    assert container(api, "default-net")["HostConfig"]["NetworkMode"] == "default"


def test_a_one_shot_container_that_exits_zero_succeeds(stack, worker, api):
    from orchestrator.pulls.actions import queue_pull

    instance = make_instance(stack, name="one-shot", network_mode="none")  # the image's CMD: sh, no input: exits 0
    job = wait_for_job(queue_pull(instance)[0].pk, timeout=120)
    assert job.state == "succeeded" and job.container_state == "exited", job.as_json()
    assert "exited with code 0" in job.message


def test_the_admin_disables_and_deletes_like_the_console(stack, worker, operator_client, admin_client, api):
    for name in ("admin-off", "admin-gone"):
        job = wait_for_job(create(operator_client, form_data(stack, name)).pk, timeout=120)
        assert job.container_state == "running", job.as_json()
    off = ContainerInstance.objects.get(name="admin-off")
    data = edit_data(off, aws_auth="", aws_access_key_id="", _save="Save")
    del data["enabled"]
    response = admin_client.post(reverse("admin:orchestrator_containerinstance_change", args=[off.pk]), data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    wait_until(lambda: container(api, "admin-off") is None, 30, "the disabled instance's container to go")

    gone = ContainerInstance.objects.get(name="admin-gone")
    url = reverse("admin:orchestrator_containerinstance_delete", args=[gone.pk])
    response = admin_client.post(url, {"post": "yes"})
    assert response.status_code == 302
    wait_until(lambda: container(api, "admin-gone") is None, 30, "the deleted instance's container to go")
    assert image_present(stack, stack.images["busybox"])

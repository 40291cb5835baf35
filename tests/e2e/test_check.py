"""Check before you pull: access, digest and platforms through the real daemon, nothing downloaded."""

from __future__ import annotations

import pytest
from django.urls import reverse

from orchestrator.models import ContainerInstance, PullJob
from registries.check import check_image
from registries.credentials import auth_config

from . import helpers
from .helpers import image_present, remove_image, wait_for_job

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def form_data(stack, key: str, **overrides) -> dict:
    return helpers.form_data(stack, key, **{"name": f"check-{key}", **overrides})


def gateway_platform(stack) -> str:
    return check_image(
        stack.docker_host,
        stack.images["busybox"],
        auth_config(stack.registry, stack.registry_username, stack.registry_password),
    ).gateway_platform


def test_the_check_lists_every_platform_of_a_multi_platform_image(stack, worker, operator_client):
    remove_image(stack, stack.images["multiarch"])
    response = operator_client.post(reverse("registry-check"), form_data(stack, "multiarch"))
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["error"] is None
    assert set(data["platforms"]) >= {"linux/amd64", "linux/arm64"}
    assert data["gateway_platform"] == gateway_platform(stack)
    assert data["supported"] is True
    assert data["digest"].startswith("sha256:")
    assert "manifest.list" in data["media_type"] or "image.index" in data["media_type"]
    # Nothing was downloaded.
    assert not image_present(stack, stack.images["multiarch"])


def test_an_image_for_another_platform_is_refused_at_save_with_both_platforms_named(stack, worker, operator_client):
    gateway = gateway_platform(stack)
    if gateway != "linux/amd64":
        pytest.fail(f"this test expects an amd64 test daemon with an arm64-only image; the daemon is {gateway}")
    response = operator_client.post(reverse("instance-create"), form_data(stack, "arm64_only"))
    assert response.status_code == 200
    errors = response.context["form"].errors["image_tag"]
    assert "This image is built for linux/arm64 only; this gateway is linux/amd64" in errors[0]
    assert not ContainerInstance.objects.exists()
    assert not PullJob.objects.exists()


def test_pull_anyway_saves_and_pulls_the_other_platform(stack, worker, operator_client):
    remove_image(stack, stack.images["arm64_only"])
    response = operator_client.post(reverse("instance-create"), form_data(stack, "arm64_only", pull_anyway="on"))
    assert response.status_code == 302, response.context["form"].errors
    instance = ContainerInstance.objects.get()
    assert instance.pull_platform == "linux/arm64"
    job = wait_for_job(PullJob.objects.get().pk)
    # The pull of the other platform succeeds; this test image (FROM scratch, CMD /bin/sh it does not contain)
    # cannot run, and the container phase that follows says so in the daemon's words.
    assert job.container_state == "failed" and job.digest and job.progress == 100, job.as_json()
    assert job.platform == "linux/arm64"
    assert job.error_code == "container_failed" and "/bin/sh" in job.container_error, job.as_json()
    page = operator_client.get(reverse("pull-detail", args=[job.pk])).content.decode()
    assert "linux/arm64" in page


def test_a_wrong_password_fails_the_check_and_creates_no_job(stack, worker, operator_client):
    response = operator_client.post(
        reverse("registry-check"), form_data(stack, "busybox", registry_password="wrong-pw-9")
    )
    data = response.json()
    assert data["error"]["code"] == "auth_failed"
    assert "wrong-pw-9" not in response.content.decode()
    saved = operator_client.post(
        reverse("instance-create"), form_data(stack, "busybox", registry_password="wrong-pw-9")
    )
    assert saved.status_code == 200
    assert "registry_password" in saved.context["form"].errors
    assert not PullJob.objects.exists()


def test_an_unknown_tag_fails_the_check_with_not_found(stack, worker, operator_client):
    response = operator_client.post(reverse("registry-check"), form_data(stack, "busybox", image_tag="nope-1"))
    assert response.json()["error"]["code"] == "not_found"
    saved = operator_client.post(reverse("instance-create"), form_data(stack, "busybox", image_tag="nope-1"))
    assert saved.status_code == 200
    assert saved.context["form"].errors
    assert not PullJob.objects.exists()


def test_the_check_uses_the_stored_password_of_an_instance(stack, worker, operator_client):
    data = form_data(stack, "busybox", enabled="")
    assert operator_client.post(reverse("instance-create"), data).status_code == 302
    instance = ContainerInstance.objects.get()
    response = operator_client.post(
        reverse("registry-check"), {**data, "registry_password": "", "instance": instance.pk}
    )
    assert response.json()["error"] is None


def test_a_viewer_may_not_run_the_check(stack, viewer_client):
    response = viewer_client.post(reverse("registry-check"), form_data(stack, "busybox"))
    assert response.status_code == 403

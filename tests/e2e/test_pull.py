"""The walking skeleton, end to end: form -> job -> Celery worker -> Docker daemon -> registry."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.urls import reverse

from orchestrator.models import ContainerInstance, PullJob

from .helpers import form_data, image_present, make_instance, remove_image, wait_for_job

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_private_image_pulls_with_the_right_password(stack, worker, operator_client):
    reference = stack.images["busybox"]
    remove_image(stack, reference)
    response = operator_client.post(
        reverse("instance-create"), form_data(stack, name="web", download_retry_interval=500)
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    job = PullJob.objects.get()
    assert response["Location"] == reverse("pull-detail", args=[job.pk])
    job = wait_for_job(job.pk)
    assert job.state == "succeeded", job.as_json()
    assert job.progress == 100
    assert job.digest.startswith("sha256:")
    assert job.attempt == 1
    assert image_present(stack, reference)
    data = operator_client.get(reverse("pull-json", args=[job.pk])).json()
    assert data["state"] == "succeeded" and data["digest"] == job.digest and data["instance"] == "web"
    # The status page shows the digest; the password is nowhere in it.
    page = operator_client.get(reverse("pull-detail", args=[job.pk])).content.decode()
    assert job.digest in page
    assert stack.registry_password not in page
    assert stack.registry_password not in json.dumps(data)
    assert stack.registry_password not in worker.log()


def test_a_wrong_password_fails_with_auth_failed(stack, worker):
    instance = make_instance(stack, password="not-the-password", download_retries=3)
    from orchestrator.pulls.actions import queue_pull

    job, _ = queue_pull(instance)
    job = wait_for_job(job.pk)
    assert job.state == "failed"
    assert job.error_code == "auth_failed"
    assert "username or password" in job.error_message
    # Wrong credentials are not retried: another attempt cannot fix them.
    assert job.attempt == 1
    assert "not-the-password" not in job.error_message


def test_a_missing_tag_fails_with_not_found(stack, worker):
    instance = make_instance(stack, image_tag="no-such-tag")
    from orchestrator.pulls.actions import queue_pull

    job, _ = queue_pull(instance)
    job = wait_for_job(job.pk)
    assert job.state == "failed"
    assert job.error_code == "not_found"
    assert "no-such-tag" in job.error_message


def test_a_multi_layer_image_shows_layer_progress_that_only_goes_up(stack, worker):
    reference = stack.images["layers"]
    remove_image(stack, reference)
    instance = make_instance(stack, "layers")
    from orchestrator.pulls.actions import queue_pull

    samples: list[dict] = []
    job, _ = queue_pull(instance)
    job = wait_for_job(job.pk, sample=samples.append)
    assert job.state == "succeeded", job.as_json()
    percentages = [s["progress"] for s in samples if s["progress"] is not None]
    assert percentages, samples
    assert percentages == sorted(percentages), percentages
    assert percentages[-1] == 100
    # Progress was visible while the pull ran, not only at the end.
    assert any(s["state"] == "running" and s["layers_total"] for s in samples), samples
    final = samples[-1]
    assert final["layers_total"] >= 3
    assert final["layers_done"] == final["layers_total"]
    assert len(final["layers"]) >= 3
    fetched = [layer for layer in final["layers"] if layer["status"] != "Already exists"]
    assert len(fetched) >= 3 and all(layer["total"] > 1_000_000 for layer in fetched), final["layers"]
    assert final["bytes_total"] == final["bytes_done"] == sum(layer["total"] for layer in fetched)
    # While sizes were unknown the JSON said null, never a made-up number.
    for sample in samples:
        if sample["state"] == "running" and sample["layers_total"] and sample["bytes_total"] is None:
            assert sample["progress"] is None
    assert image_present(stack, reference)


def test_a_stopped_daemon_fails_with_daemon_unreachable(stack, worker):
    from orchestrator.pulls.actions import queue_pull
    from tests.stack import start_dockerd, stop_dockerd

    instance = make_instance(stack, download_retries=1, download_retry_interval=100)
    stop_dockerd(stack)
    try:
        job, _ = queue_pull(instance)
        job = wait_for_job(job.pk, timeout=60)
    finally:
        start_dockerd(stack)
    assert job.state == "failed"
    assert job.error_code == "daemon_unreachable"
    assert job.attempt == 2  # one retry, as download_retries says
    assert "Docker daemon" in job.error_message


def test_manage_py_pull_wait_exits_zero_on_success_and_one_on_failure(stack, worker, console_env):
    remove_image(stack, stack.images["busybox"])
    make_instance(stack, name="cli-good")
    make_instance(stack, name="cli-bad", image_tag="missing-tag")
    env = {**console_env}
    good = subprocess.run(
        [sys.executable, "manage.py", "pull", "cli-good", "--wait"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Pulled" in good.stdout and "sha256:" in good.stdout
    bad = subprocess.run(
        [sys.executable, "manage.py", "pull", "cli-bad", "--wait"], env=env, capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "not_found" in bad.stderr
    assert ContainerInstance.objects.get(name="cli-good").pulls.get().state == "succeeded"

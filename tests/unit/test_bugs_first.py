"""Seven confirmed bugs, written against the tree before the restructuring."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DatabaseError
from django.urls import reverse
from django.utils import timezone

from orchestrator import containers, leases
from orchestrator.models import ContainerInstance, PullJob

from .form_data import instance_form

pytestmark = pytest.mark.django_db

ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


@pytest.fixture
def job(db):
    instance = ContainerInstance.objects.create(
        name="web", image_name="team/app", image_tag="1", download_retries=1, download_retry_interval=100
    )
    return PullJob.objects.create(instance=instance, reference="docker.io/team/app:1", dispatched_at=timezone.now())


def test_bug1_a_worker_that_lost_the_job_writes_nothing_in_the_container_phase(job, settings):
    settings.DOCKER_HOST = "unix:///nonexistent/docker.sock"
    assert leases.claim(job.pk, "worker-a")
    PullJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=1000))
    assert leases.release_stale(job.pk, stale_after=10) == "requeued"
    assert leases.claim(job.pk, "worker-b")
    before = PullJob.objects.values().get(pk=job.pk)
    result = containers.finish_pull(job.pk, {"progress": 100, "digest": "", "message": "Pulled"})
    assert result == "lost"
    assert PullJob.objects.values().get(pk=job.pk) == before


def test_bug2_check_access_works_with_check_image_on_save_off(operator_client, settings):
    settings.CHECK_IMAGE_ON_SAVE = False
    settings.DOCKER_HOST = "unix:///nonexistent/docker.sock"
    response = operator_client.post(reverse("registry-check"), instance_form())
    assert response.status_code == 200, response.json()
    assert response.json()["error"]["code"] == "daemon_unreachable"


def test_bug3_a_temporary_aws_failure_saves_with_a_warning(operator_client, settings, monkeypatch):
    settings.DOCKER_HOST = "unix:///nonexistent/docker.sock"
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", "http://127.0.0.1:9")
    data = instance_form(
        image_name=f"{ECR}/team/app",
        registry_url=ECR,
        aws_auth="keys",
        aws_access_key_id="AKIAEXAMPLEKEY",
        aws_secret_access_key="secret-x",
    )
    response = operator_client.post(reverse("instance-create"), data, follow=True)
    assert ContainerInstance.objects.filter(name="web").exists(), response.context["form"].errors
    assert "cannot be reached" in response.content.decode()


def test_bug6_the_attempts_table_shows_the_budget_the_job_ran_with(job, operator_client):
    PullJob.objects.filter(pk=job.pk).update(
        attempt=1, attempts=[{"number": 1, "worker": "w", "outcome": "failed", "code": "x", "message": "",
                              "started_at": timezone.now().isoformat(), "finished_at": None}]
    )
    ContainerInstance.objects.filter(pk=job.instance_id).update(download_retries=7)
    page = operator_client.get(reverse("pull-detail", args=[job.pk])).content.decode()
    assert "(up to 2)" in page and "(up to 8)" not in page


def test_bug7_the_instance_and_its_job_commit_together(operator_client, monkeypatch):
    def boom(**fields):
        raise DatabaseError("disk full")

    monkeypatch.setattr(PullJob.objects, "create", boom)
    with pytest.raises(DatabaseError):
        operator_client.post(reverse("instance-create"), instance_form(enabled="on"))
    assert not ContainerInstance.objects.exists()

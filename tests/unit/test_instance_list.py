"""The instance list: each instance's gateway and when it last pulled, at a constant cost in queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from orchestrator.models import ContainerInstance, ContainerState, Gateway, PullJob

pytestmark = pytest.mark.django_db


def pull(instance: ContainerInstance, state: str, minutes_ago: float | None = None) -> PullJob:
    finished = timezone.now() - timedelta(minutes=minutes_ago) if minutes_ago is not None else None
    return PullJob.objects.create(
        instance=instance,
        reference=f"docker.io/library/{instance.image_name}:latest",
        state=state,
        queued_at=(finished or timezone.now()) - timedelta(seconds=30),
        finished_at=finished,
    )


def row(page: str, name: str) -> str:
    start = page.index(f'<tr data-instance="{name}">')
    return page[start : page.index("</tr>", start)]


def test_each_row_links_to_its_gateway(viewer_client):
    ContainerInstance.objects.create(name="web", image_name="busybox", gateway=Gateway.objects.create(name="plant-3"))
    ContainerInstance.objects.create(name="db", image_name="postgres")
    page = viewer_client.get(reverse("instance-list")).content.decode()
    assert f'<a href="{reverse("gateway-detail", args=["plant-3"])}">plant-3</a>' in row(page, "web")
    assert f'<a href="{reverse("gateway-detail", args=["local"])}">local</a>' in row(page, "db")


def test_last_pulled_is_the_latest_success_even_after_a_failure(viewer_client):
    instance = ContainerInstance.objects.create(name="web", image_name="busybox")
    pull(instance, "succeeded", minutes_ago=60)
    latest = pull(instance, "succeeded", minutes_ago=3)
    pull(instance, "failed", minutes_ago=1)
    pull(instance, "running")
    cells = row(viewer_client.get(reverse("instance-list")).content.decode(), "web")
    assert "3\xa0minutes ago</time>" in cells
    assert f'title="{latest.finished_at:%Y-%m-%d %H:%M:%S} UTC"' in cells


def test_an_instance_that_never_pulled_successfully_says_never(viewer_client):
    pull(ContainerInstance.objects.create(name="web", image_name="busybox"), "failed", minutes_ago=2)
    ContainerInstance.objects.create(name="db", image_name="postgres")
    page = viewer_client.get(reverse("instance-list")).content.decode()
    for name in ("web", "db"):
        assert '<td data-label="Last pulled"><span class="text-body-secondary">never</span></td>' in row(page, name)


def test_a_page_makes_the_same_queries_for_one_instance_or_many(viewer_client):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert viewer_client.get(reverse("instance-list")).status_code == 200
        return len(captured)

    instance = ContainerInstance.objects.create(name="one", image_name="busybox")
    pull(instance, "succeeded", minutes_ago=5)
    few = queries()
    for number in range(12):
        gateway = Gateway.objects.create(name=f"plant-{number}")
        many = ContainerInstance.objects.create(name=f"app-{number}", image_name="busybox", gateway=gateway)
        pull(many, "succeeded", minutes_ago=number)
        pull(many, "running")
    assert queries() == few


def test_each_row_shows_the_container_state_its_own_gateway_reported(viewer_client):
    plant = Gateway.objects.create(name="plant-4")
    web = ContainerInstance.objects.create(name="web", image_name="busybox")
    db = ContainerInstance.objects.create(name="db", image_name="postgres")
    now = timezone.now()
    ContainerState.objects.create(instance=web, gateway=web.gateway, exists=True, state="running", reported_at=now)
    # What another gateway said (the instance moved away from it) is not the instance's container.
    ContainerState.objects.create(instance=db, gateway=plant, exists=True, state="exited", reported_at=now)
    page = viewer_client.get(reverse("instance-list")).content.decode()
    assert ">running</span>" in row(page, "web")
    assert ">none</span>" in row(page, "db") and "exited" not in row(page, "db")

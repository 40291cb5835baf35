"""The instance list, empty states, the footer's health line, and the admin's "Pull now" in a browser."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from orchestrator.models import ContainerInstance, PullJob
from tests.e2e.helpers import image_present, make_instance, wait_for_job

from .conftest import PHONE, horizontal_overflow, log_in, unlabelled_fields

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ECR_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app"


def row(page, name: str):
    return page.locator("tbody tr", has=page.get_by_role("link", name=name, exact=True))


def _instances_of_every_sort() -> None:
    hub = ContainerInstance.objects.create(name="hub-app", image_name="myuser/myapp", image_tag="1.2")
    ContainerInstance.objects.create(
        name="ecr-app",
        image_name=ECR_IMAGE,
        image_tag="1.4",
        registry_url="123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/",
        registry_username="AWS",
        registry_password="pasted-ecr-password",
        registry_password_expires_at=timezone.now() + timedelta(hours=5, minutes=1),
    )
    ContainerInstance.objects.create(
        name="old-ecr-app",
        image_name=ECR_IMAGE,
        registry_url="123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/",
        registry_username="AWS",
        registry_password="stale-ecr-password",
        registry_password_expires_at=timezone.now() - timedelta(minutes=1),
        enabled=False,
    )
    ghcr = ContainerInstance.objects.create(name="ghcr-app", image_name="ghcr.io/owner/app", image_tag="2.0")
    now = timezone.now()
    PullJob.objects.create(
        instance=hub,
        reference="docker.io/myuser/myapp:1.2",
        state="failed",
        error_code="auth_failed",
        error_message="The registry refused the username or password.",
        attempt=1,
        finished_at=now,
    )
    # A pull in progress, as a worker records it (its heartbeat is fresh, so no sweeper touches it).
    PullJob.objects.create(
        instance=ghcr,
        reference="ghcr.io/owner/app:2.0",
        state="running",
        progress=42,
        bytes_done=42,
        bytes_total=100,
        layers_done=1,
        layers_total=3,
        attempt=1,
        started_at=now,
        heartbeat_at=now + timedelta(minutes=5),
        dispatched_at=now,
        worker="elsewhere",
    )


def test_the_list_shows_kind_state_progress_and_ecr_expiry_and_filters(worker_env, page, operator):
    _instances_of_every_sort()
    log_in(page, "otto-operator", "pw-otto-operator")

    assert page.locator("#instance-count").inner_text().startswith("1–4 of 4 instances")
    assert row(page, "hub-app").locator(".kind-badge").inner_text() == "Docker Hub"
    assert row(page, "ecr-app").locator(".kind-badge").inner_text() == "Amazon ECR"
    assert row(page, "ghcr-app").locator(".kind-badge").inner_text() == "GitHub Container Registry"
    assert "ECR password expires in 5\xa0hours" in row(page, "ecr-app").inner_text()
    assert "ECR password expired: paste a new one" in row(page, "old-ecr-app").inner_text()
    assert "disabled" in row(page, "old-ecr-app").inner_text()
    failed = row(page, "hub-app").inner_text()
    assert "Failed" in failed and "auth_failed" in failed
    assert "never pulled" in row(page, "ecr-app").inner_text()
    bar = row(page, "ghcr-app").locator("progress")
    assert bar.get_attribute("value") == "42"
    assert bar.get_attribute("aria-label") == "Pull progress of ghcr-app"
    assert "42%" in row(page, "ghcr-app").inner_text()
    # While a pull runs the list refreshes itself (htmx), and says so; it stops once no pull is active.
    assert "updating while pulls run" in page.locator("#instance-count").inner_text()
    PullJob.objects.filter(state="running").update(state="succeeded", progress=100, finished_at=timezone.now())
    row(page, "ghcr-app").get_by_text("Succeeded").wait_for(timeout=10_000)
    assert "updating while pulls run" not in page.locator("#instance-count").inner_text()
    assert page.locator("#instance-rows[hx-trigger]").count() == 0
    assert unlabelled_fields(page) == []

    # Search and filter.
    page.get_by_label("Search").fill("ghcr")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/?q=ghcr*")
    assert page.locator("tbody tr").count() == 1 and row(page, "ghcr-app").count() == 1
    page.get_by_label("Search").fill("")
    page.get_by_label("Latest pull").select_option("failed")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**state=failed*")
    assert page.locator("tbody tr").count() == 1 and row(page, "hub-app").count() == 1
    page.get_by_label("Search").fill("nothing-like-this")
    page.get_by_role("button", name="Filter").click()
    assert "No instance matches “nothing-like-this”" in page.locator("#empty-state").inner_text()
    page.get_by_role("link", name="show all instances").click()
    assert page.locator("tbody tr").count() == 4

    # Phone width: one card per instance, each value labelled, nothing scrolls sideways.
    page.set_viewport_size(PHONE)
    assert horizontal_overflow(page) == 0
    card = row(page, "ecr-app")
    assert card.locator("td[data-label=Registry]").evaluate("td => getComputedStyle(td, '::before').content") == (
        '"Registry"'
    )
    assert card.get_by_role("button", name="Pull again ecr-app").is_visible()


def test_the_list_is_paginated_by_fifty(worker_env, page, operator):
    ContainerInstance.objects.bulk_create(
        ContainerInstance(name=f"app-{number:03}", image_name=f"team/app{number}") for number in range(51)
    )
    log_in(page, "otto-operator", "pw-otto-operator")
    assert page.locator("tbody tr").count() == 50
    assert page.locator("#instance-count").inner_text().startswith("1–50 of 51 instances")
    page.get_by_role("link", name="Next").click()
    assert page.locator("tbody tr").count() == 1 and row(page, "app-050").count() == 1
    assert page.get_by_text("Page 2 of 2").is_visible()


def test_empty_states_say_what_to_do_next(stack, worker, page, operator, viewer):
    log_in(page, "otto-operator", "pw-otto-operator")
    empty = page.locator("#empty-state")
    assert "No container instances yet" in empty.inner_text()
    empty.get_by_role("link", name="Create the first one").click()
    page.wait_for_url("**/instances/new/")
    assert (
        page.get_by_role("navigation", name="Main")
        .get_by_role("link", name="New container instance")
        .get_attribute("aria-current")
        == "page"
    )

    # The footer tells whether pulls can run at all.
    footer = page.locator("#health")
    page.wait_for_function("() => !document.querySelector('#health').textContent.includes('checking')")
    assert "Gateways: up" in footer.inner_text()  # the agent of local reports
    assert "Task queue: up" in footer.inner_text()
    assert "Database: up" in footer.inner_text()

    # A disabled instance saves without pulling; the message says so and the instance page has no pull yet.
    image_name, tag = stack.images["busybox"].rsplit(":", 1)
    page.get_by_label("Container name").fill("later")
    page.get_by_label("Enabled").uncheck()
    page.get_by_label("Image name").fill(image_name)
    page.get_by_label("Image tag").fill(tag)
    page.get_by_label("Authentication registry URL").fill(stack.registry)
    page.get_by_label("Authentication username").fill(stack.registry_username)
    page.get_by_label("Password", exact=True).fill(stack.registry_password)
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/instances/*/")
    assert page.get_by_role("status").filter(has_text="Saved later.").is_visible()
    assert "No pull yet." in page.locator("main").inner_text()

    page.get_by_role("button", name="Log out").click()
    ContainerInstance.objects.all().delete()
    log_in(page, "vera-viewer", "pw-vera-viewer")
    assert "ask an operator or an administrator" in page.locator("#empty-state").inner_text()
    assert page.get_by_role("link", name="New container instance").count() == 0


def test_the_admin_changelist_pulls_now(stack, worker, page, admin_user):
    instance = make_instance(stack, "busybox", name="admin-pulled")
    other = make_instance(stack, "layers", name="admin-untouched")
    log_in(page, "admin", "password")
    page.get_by_role("link", name="Admin", exact=True).click()
    page.get_by_role("link", name="Container instances").click()
    page.wait_for_url("**/admin/orchestrator/containerinstance/")
    assert page.locator("#result_list tbody tr").count() == 2
    page.locator(f"input[name=_selected_action][value='{instance.pk}']").check()
    page.get_by_label("Action:").select_option(label="Pull now")
    page.get_by_role("button", name="Go").click()

    assert "Queued 1 pull(s); 0 already under way." in page.locator(".messagelist").inner_text()
    job = PullJob.objects.get(instance=instance)
    assert not PullJob.objects.filter(instance=other).exists()
    job = wait_for_job(job.pk, timeout=120)
    assert job.state == "succeeded", job.as_json()
    assert image_present(stack, stack.images["busybox"])

    page.goto("/admin/orchestrator/pulljob/")
    job_row = page.locator("#result_list tbody tr")
    assert job_row.count() == 1
    assert "Succeeded" in job_row.inner_text() and "100%" in job_row.inner_text()

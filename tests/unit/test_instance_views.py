"""The instance form and pages through the real views (no worker needed: jobs stay queued)."""

from __future__ import annotations

import pytest
from django.db import DatabaseError
from django.urls import reverse
from django.utils import timezone

from orchestrator.models import ContainerInstance, PullJob

from .form_data import instance_form

pytestmark = pytest.mark.django_db

VALID = instance_form(registry_username="myuser", registry_password="secret-marker-123")


def post(client, data, url=None):
    return client.post(url or reverse("instance-create"), data)


def test_it_saves_a_disabled_instance_without_queueing_a_pull(operator_client):
    response = post(operator_client, VALID)
    assert response.status_code == 302
    instance = ContainerInstance.objects.get(name="web")
    assert instance.registry_password == "secret-marker-123"
    assert not PullJob.objects.exists()


def test_an_enabled_instance_queues_a_pull_and_lands_on_its_status_page(operator_client):
    response = post(operator_client, {**VALID, "enabled": "on"})
    job = PullJob.objects.get()
    assert response["Location"] == reverse("pull-detail", args=[job.pk])
    assert job.state == "queued"
    assert job.reference == "docker.io/myuser/myapp:1.2"


def test_a_blank_tag_becomes_latest(operator_client):
    post(operator_client, {**VALID, "image_tag": ""})
    assert ContainerInstance.objects.get().image_tag == "latest"


def test_the_password_is_stored_encrypted(operator_client):
    from django.db import connection

    post(operator_client, VALID)
    with connection.cursor() as cursor:
        cursor.execute("SELECT registry_password FROM orchestrator_containerinstance")
        (raw,) = cursor.fetchone()
    assert "secret-marker-123" not in raw
    assert raw.startswith("fernet:")


def test_a_bad_reference_is_a_field_error_and_keeps_what_was_typed(operator_client):
    response = post(operator_client, {**VALID, "image_name": "MyUser/MyApp"})
    assert response.status_code == 200
    form = response.context["form"]
    assert "image_name" in form.errors
    assert "lowercase" in " ".join(form.errors["image_name"])
    page = response.content.decode()
    assert 'value="MyUser/MyApp"' in page
    assert 'value="myuser"' in page
    assert "secret-marker-123" not in page
    assert not ContainerInstance.objects.exists()


def test_the_edit_form_never_shows_the_stored_password_and_blank_keeps_it(operator_client):
    post(operator_client, VALID)
    instance = ContainerInstance.objects.get()
    url = reverse("instance-edit", args=[instance.pk])
    page = operator_client.get(url).content.decode()
    assert "secret-marker-123" not in page
    assert "Leave blank to keep it" in page
    response = post(operator_client, {**VALID, "registry_password": "", "image_tag": "1.3"}, url)
    assert response.status_code == 302, response.context["form"].errors
    instance.refresh_from_db()
    assert instance.image_tag == "1.3"
    assert instance.registry_password == "secret-marker-123"


def test_the_clear_checkbox_removes_the_stored_password(operator_client):
    post(operator_client, VALID)
    instance = ContainerInstance.objects.get()
    url = reverse("instance-edit", args=[instance.pk])
    post(operator_client, {**VALID, "registry_password": "", "registry_username": "", "clear_password": "on"}, url)
    instance.refresh_from_db()
    assert instance.registry_password == ""


def test_pull_again_attaches_to_the_pull_already_under_way(operator_client):
    post(operator_client, {**VALID, "enabled": "on"})
    instance = ContainerInstance.objects.get()
    first = PullJob.objects.get()
    response = operator_client.post(reverse("instance-pull", args=[instance.pk]))
    assert response["Location"] == reverse("pull-detail", args=[first.pk])
    assert PullJob.objects.count() == 1


def test_the_job_json_follows_the_contract(operator_client):
    post(operator_client, {**VALID, "enabled": "on"})
    job = PullJob.objects.get()
    data = operator_client.get(reverse("pull-json", args=[job.pk])).json()
    assert set(data) >= {
        "id",
        "instance",
        "reference",
        "state",
        "progress",
        "bytes_done",
        "bytes_total",
        "layers_done",
        "layers_total",
        "layers",
        "message",
        "digest",
        "attempt",
        "error",
        "queued_at",
        "started_at",
        "finished_at",
    }
    assert data["progress"] is None and data["error"] is None and data["state"] == "queued"
    assert "secret-marker-123" not in str(data)


def test_unknown_ids_are_404_not_500(operator_client):
    assert operator_client.get(reverse("pull-json", args=[999])).status_code == 404
    assert operator_client.get(reverse("pull-detail", args=[999])).status_code == 404
    assert operator_client.get(reverse("instance-detail", args=[999])).status_code == 404


def test_anonymous_json_gets_401_and_pages_redirect_to_login(client):
    assert client.get(reverse("pull-json", args=[1])).status_code == 401
    response = client.get(reverse("instance-list"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_a_viewer_sees_but_may_not_create_or_pull(viewer_client, operator):
    instance = ContainerInstance.objects.create(name="x", image_name="busybox")
    assert viewer_client.get(reverse("instance-list")).status_code == 200
    assert viewer_client.get(reverse("instance-create")).status_code == 403
    assert viewer_client.post(reverse("instance-pull", args=[instance.pk])).status_code == 403
    assert not PullJob.objects.exists()


def test_cancelling_a_queued_pull_ends_it_at_once(operator_client):
    post(operator_client, {**VALID, "enabled": "on"})
    job = PullJob.objects.get()
    operator_client.post(reverse("pull-cancel", args=[job.pk]))
    job.refresh_from_db()
    assert job.state == "cancelled"


def test_healthz_answers_anonymously_without_details(client):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    data = response.json()
    assert set(data["checks"]) == {"database", "broker", "gateways"}
    assert all(set(check) == {"ok"} for check in data["checks"].values())


def test_the_admin_change_form_works_and_never_shows_the_password(admin_client):
    instance = ContainerInstance.objects.create(name="adm", image_name="busybox", registry_password="admin-marker-5")
    page = admin_client.get(reverse("admin:orchestrator_containerinstance_change", args=[instance.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "admin-marker-5" not in body and 'name="aws_auth"' in body
    assert 'id="paste-uri"' in body and "js/app.js" in body  # the same paste helper as the console
    assert admin_client.get(reverse("admin:orchestrator_containerinstance_add")).status_code == 200
    assert admin_client.get(reverse("admin:orchestrator_pulljob_changelist")).status_code == 200


def test_the_admin_pull_now_action_queues_one_pull_per_instance(admin_client):
    instance = ContainerInstance.objects.create(name="adm", image_name="busybox")
    response = admin_client.post(
        reverse("admin:orchestrator_containerinstance_changelist"),
        {"action": "pull_now", "_selected_action": [instance.pk]},
    )
    assert response.status_code == 302
    assert PullJob.objects.filter(instance=instance, state="queued").count() == 1


def test_the_instance_and_its_job_commit_together(operator_client, monkeypatch):
    def boom(**fields):
        raise DatabaseError("disk full")

    monkeypatch.setattr(PullJob.objects, "create", boom)
    with pytest.raises(DatabaseError):
        operator_client.post(reverse("instance-create"), instance_form(enabled="on"))
    assert not ContainerInstance.objects.exists()


def test_the_attempts_table_shows_the_budget_the_job_ran_with(operator_client):
    instance = ContainerInstance.objects.create(name="web", image_name="team/app", image_tag="1", download_retries=1)
    job = PullJob.objects.create(instance=instance, reference="docker.io/team/app:1", download_retries=1)
    PullJob.objects.filter(pk=job.pk).update(
        attempt=1,
        attempts=[
            {
                "number": 1,
                "worker": "w",
                "outcome": "failed",
                "code": "x",
                "message": "",
                "started_at": timezone.now().isoformat(),
                "finished_at": None,
            }
        ],
    )
    ContainerInstance.objects.filter(pk=job.instance_id).update(download_retries=7)
    page = operator_client.get(reverse("pull-detail", args=[job.pk])).content.decode()
    assert "(up to 2)" in page and "(up to 8)" not in page

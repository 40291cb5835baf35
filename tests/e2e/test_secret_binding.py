"""A stored secret never reaches a host it was not entered for: a rogue registry records what it gets.

The operator (and the admin, on the console and in the admin site) edits an instance whose password is
stored for the stack's registry, points it at the rogue registry, leaves the password blank ("keep the
stored one"), presses Check access and Save; then a row changed around the form is pulled. The rogue
registry answers 401 with a Basic challenge, so a daemon holding credentials would send them.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from orchestrator.models import ContainerInstance, PullJob
from orchestrator.pulls.actions import queue_pull

from .helpers import form_data, wait_for_job
from .rogue_registry import RogueRegistry

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def rogue():
    with RogueRegistry() as registry:
        yield registry


def saved_instance(stack, operator_client) -> ContainerInstance:
    response = operator_client.post(reverse("instance-create"), form_data(stack, name="bound", enabled=""))
    assert response.status_code == 302, response.context["form"].errors
    instance = ContainerInstance.objects.get(name="bound")
    assert instance.credentials_host == stack.registry
    return instance


def towards(rogue, instance: ContainerInstance, stack, **extra) -> dict:
    image, tag = stack.images["busybox"].rsplit(":", 1)
    data = form_data(
        stack,
        name=instance.name,
        enabled="",
        image_name=image.replace(stack.registry, rogue.address),
        registry_url=rogue.address,
        registry_password="",
    )
    data.update(extra)
    return data


def test_no_edit_check_or_save_sends_the_stored_password_elsewhere(stack, worker, operator_client, admin_client, rogue):
    instance = saved_instance(stack, operator_client)
    secret = stack.registry_password
    for client in (operator_client, admin_client):
        check = client.post(reverse("registry-check"), {**towards(rogue, instance, stack), "instance": instance.pk})
        assert check.status_code == 400 and "registry_password" in check.json()["fields"], check.content
        save = client.post(reverse("instance-edit", args=[instance.pk]), towards(rogue, instance, stack))
        assert save.status_code == 200
        assert "the stored one is for" in " ".join(save.context["form"].errors["registry_password"])
    admin_data = {**towards(rogue, instance, stack), "aws_auth": "", "aws_access_key_id": "", "_save": "Save"}
    admin_data.pop("enabled")
    admin_site = admin_client.post(
        reverse("admin:orchestrator_containerinstance_change", args=[instance.pk]), admin_data
    )
    assert admin_site.status_code == 200 and "the stored one is for" in admin_site.content.decode()
    instance.refresh_from_db()
    assert instance.registry_url == stack.registry and instance.registry_password == secret

    # A row changed around the form: the worker refuses to hand the stored secret to the daemon.
    ContainerInstance.objects.filter(pk=instance.pk).update(
        image_name=towards(rogue, instance, stack)["image_name"], registry_url=rogue.address
    )
    instance.refresh_from_db()
    job = wait_for_job(queue_pull(instance)[0].pk, timeout=60)
    assert job.state == PullJob.State.FAILED and job.error_code == "credentials_mismatch", job.as_json()

    assert not rogue.received(secret), "the rogue registry got the stored password"
    assert not rogue.received(stack.registry_username + ":"), rogue.authorizations


def test_a_password_typed_for_the_new_host_goes_there_and_nowhere_else(stack, worker, operator_client, rogue):
    instance = saved_instance(stack, operator_client)
    typed = "typed-for-the-rogue-host"
    response = operator_client.post(
        reverse("registry-check"), {**towards(rogue, instance, stack, registry_password=typed), "instance": instance.pk}
    )
    assert response.status_code == 200 and response.json()["error"]["code"] == "auth_failed", response.content
    assert rogue.received(typed), "the check must really reach the registry it was asked about"
    assert not rogue.received(stack.registry_password)

"""A stored secret goes only to the login host it was entered for (issue 14, first hole)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from orchestrator.models import ContainerInstance
from orchestrator.pulls import credentials
from registries.errors import PullError

from .form_data import instance_form

pytestmark = pytest.mark.django_db

SECRET = "stored-secret-marker-77"
EVIL = "evil.example.com"


@pytest.fixture
def saved(operator_client):
    data = instance_form(
        image_name="registry.example.com:5000/team/app",
        registry_url="registry.example.com:5000",
        registry_username="robot",
        registry_password=SECRET,
    )
    response = operator_client.post(reverse("instance-create"), data)
    assert response.status_code == 302
    return ContainerInstance.objects.get(name="web")


def edit(client, instance, **changes):
    data = instance_form(
        image_name=instance.image_name,
        registry_url=instance.registry_url,
        registry_username=instance.registry_username,
        registry_password="",
    )
    data.update(changes)
    return client.post(reverse("instance-edit", args=[instance.pk]), data)


def test_the_stored_password_keeps_the_host_it_was_entered_for(saved):
    assert saved.credentials_host == "registry.example.com:5000"


def test_an_edit_that_moves_the_login_host_does_not_keep_the_stored_password(saved, operator_client, settings):
    settings.DOCKER_HOST = "unix:///nonexistent/docker.sock"
    response = edit(operator_client, saved, image_name=f"{EVIL}/team/app", registry_url=EVIL, memory="256m")
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors["registry_password"] == [
        f"Enter the password for {EVIL}: the stored one is for registry.example.com:5000."
    ]
    page = response.content.decode()
    assert f'value="{EVIL}/team/app"' in page and 'value="256m"' in page and SECRET not in page
    saved.refresh_from_db()
    assert saved.image_name == "registry.example.com:5000/team/app" and saved.registry_password == SECRET


def test_a_new_password_for_the_new_host_is_accepted_and_bound_to_it(saved, operator_client):
    response = edit(operator_client, saved, image_name=f"{EVIL}/team/app", registry_url=EVIL, registry_password="new")
    assert response.status_code == 302
    saved.refresh_from_db()
    assert saved.credentials_host == EVIL and saved.registry_password == "new"


def test_the_password_can_still_be_removed_while_the_host_changes(saved, operator_client):
    response = edit(
        operator_client,
        saved,
        image_name=f"{EVIL}/team/app",
        registry_url=EVIL,
        registry_username="",
        clear_password="on",
    )
    assert response.status_code == 302, response.context["form"].errors
    saved.refresh_from_db()
    assert saved.registry_password == "" and saved.credentials_host == ""


def test_an_edit_on_the_same_host_keeps_the_stored_password(saved, operator_client):
    response = edit(operator_client, saved, image_tag="2.0", registry_url="https://REGISTRY.example.com:5000/")
    assert response.status_code == 302, response.context["form"].errors
    saved.refresh_from_db()
    assert saved.registry_password == SECRET and saved.image_tag == "2.0"


def test_docker_hub_aliases_are_one_host_for_a_stored_password(operator_client):
    data = instance_form(registry_username="me", registry_password=SECRET)
    operator_client.post(reverse("instance-create"), data)
    instance = ContainerInstance.objects.get()
    assert instance.credentials_host == "docker.io"
    response = edit(operator_client, instance, registry_url="https://registry.hub.docker.com/")
    assert response.status_code == 302, response.context["form"].errors


def test_check_access_refuses_to_use_the_stored_password_for_another_host(saved, operator_client, settings):
    settings.DOCKER_HOST = "unix:///nonexistent/docker.sock"
    data = instance_form(image_name=f"{EVIL}/team/app", registry_url=EVIL, registry_username="robot", instance=saved.pk)
    response = operator_client.post(reverse("registry-check"), data)
    assert response.status_code == 400
    body = response.json()
    assert "registry_password" in body["fields"] and SECRET not in response.content.decode()


def test_check_access_with_an_instance_needs_the_change_permission(saved, django_user_model):
    adder = django_user_model.objects.create_user("adder", password="pw-adder")
    adder.user_permissions.add(Permission.objects.get(codename="add_containerinstance"))
    client = Client()
    client.force_login(adder)
    response = client.post(reverse("registry-check"), instance_form(instance=saved.pk))
    assert response.status_code == 403
    assert client.post(reverse("registry-check"), instance_form()).status_code != 403


def test_the_pull_refuses_a_stored_secret_whose_host_differs(saved):
    # A row changed around the form (a shell, a bad migration): nothing is sent, the code says why.
    ContainerInstance.objects.filter(pk=saved.pk).update(image_name=f"{EVIL}/team/app", registry_url=EVIL)
    saved.refresh_from_db()
    with pytest.raises(PullError) as raised:
        credentials.for_instance(saved, EVIL)
    assert raised.value.code == "credentials_mismatch"
    assert EVIL in raised.value.message and SECRET not in raised.value.message
    assert not raised.value.retryable


def test_the_pull_sends_a_stored_secret_to_its_own_host(saved):
    auth, _ = credentials.for_instance(saved, "registry.example.com:5000")
    assert auth["serveraddress"] == "registry.example.com:5000" and auth["password"] == SECRET


def test_the_views_that_take_secrets_keep_them_out_of_error_reports(operator_client):
    response = operator_client.post(reverse("instance-create"), instance_form(registry_password=SECRET))
    assert set(response.wsgi_request.sensitive_post_parameters) == {"registry_password", "aws_secret_access_key"}


def test_an_error_report_from_inside_the_credentials_code_hides_them():
    import sys
    from datetime import timedelta

    from django.utils import timezone
    from django.views.debug import ExceptionReporter

    try:
        login = credentials.Login(
            registry_url="r.example",
            username="u",
            password=SECRET,
            password_expires_at=timezone.now() - timedelta(hours=1),
        )
        credentials.resolve("r.example", login)
    except PullError:
        text = ExceptionReporter(None, *sys.exc_info()).get_traceback_html()
    assert "resolve" in text and SECRET not in text

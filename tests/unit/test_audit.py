"""The audit log: every change on record with who, when and from where; never a secret; admins only."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.core import serializers
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.forms import MultiWidget
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from orchestrator.audit.prune import LAST_PRUNE_KEY, prune
from orchestrator.audit.record import record, secret_fields
from orchestrator.models import AuditEntry, ContainerInstance, PullJob
from orchestrator.security.encryption import EncryptedTextField, Secret

from .form_data import instance_form

pytestmark = pytest.mark.django_db

ADDRESS = "198.51.100.23"
MARKER = "audit-marker-Pw9x"
ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


@pytest.fixture(autouse=True)
def no_daemon(settings):
    settings.CHECK_IMAGE_ON_SAVE = False
    settings.DOCKER_HOST = "unix:///nonexistent/docker.sock"


@pytest.fixture
def admin_role_client(django_user_model):
    """A console administrator by role (the admin group), not a superuser."""
    user = django_user_model.objects.create_user(username="ada-admin", password="pw-ada-admin", is_staff=True)
    user.groups.add(Group.objects.get(name="admin"))
    client = Client()
    client.force_login(user)
    return client


def entries(action: str):
    return AuditEntry.objects.filter(action=action).order_by("pk")


def only(action: str) -> AuditEntry:
    (entry,) = entries(action)
    return entry


def create(client, **overrides) -> ContainerInstance:
    response = client.post(reverse("instance-create"), instance_form(**overrides), REMOTE_ADDR=ADDRESS)
    assert response.status_code == 302, response.context["form"].errors
    return ContainerInstance.objects.get(name=overrides.get("name", "web"))


def whole_table() -> str:
    """Every audit row, as dumpdata writes them and as the database holds them."""
    dumped = serializers.serialize("json", AuditEntry.objects.all())
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM orchestrator_auditentry")
        raw = json.dumps(cursor.fetchall(), default=str)
    return dumped + raw


def forms_of(secret: str) -> list[str]:
    data = secret.encode()
    return [secret, base64.b64encode(data).decode(), base64.urlsafe_b64encode(data).decode().rstrip("=")]


def admin_form_data(client, url: str, **overrides) -> dict:
    """The admin form as the page shows it, with ``overrides``: what a browser would post."""
    form = client.get(url).context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if getattr(field.widget, "input_type", "") == "password":
            continue  # a browser sends the stored secret's box empty
        if isinstance(field.widget, MultiWidget):
            parts = field.widget.decompress(value)
            data.update({f"{name}_{i}": part for i, part in enumerate(parts) if part is not None})
        elif isinstance(value, list | tuple):
            data[name] = [getattr(item, "pk", item) for item in value]
        elif value is True:
            data[name] = "on"
        elif value not in (None, False):
            data[name] = value
    data.update(overrides)
    return data


# --- instances ------------------------------------------------------------------------------------


def test_it_records_a_created_instance_with_user_address_and_fields(operator_client, operator):
    instance = create(operator_client, registry_username="myuser", registry_password=MARKER)
    entry = only("instance.create")
    assert (entry.user, entry.username, entry.address) == (operator, "otto-operator", ADDRESS)
    assert (entry.instance, entry.instance_name) == (instance, "web")
    assert entry.changes["name"] == ["", "web"]
    assert entry.changes["image_tag"] == ["latest", "1.2"]
    assert entry.changes["registry_username"] == ["", "myuser"]
    assert entry.changes["registry_password"] == "changed"
    assert timezone.now() - entry.at < timedelta(minutes=1)


def test_it_records_an_edit_field_by_field_with_secrets_as_changed(operator_client):
    instance = create(operator_client, registry_username="myuser", registry_password=MARKER)
    url = reverse("instance-edit", args=[instance.pk])
    data = instance_form(registry_username="myuser", registry_password=MARKER + "-new", image_tag="1.3")
    assert operator_client.post(url, data, REMOTE_ADDR=ADDRESS).status_code == 302
    entry = only("instance.change")
    assert entry.changes == {"image_tag": ["1.2", "1.3"], "registry_password": "changed"}
    assert entry.address == ADDRESS and entry.instance == instance


def test_it_leaves_a_kept_secret_out_of_an_edit(operator_client):
    instance = create(operator_client, registry_username="myuser", registry_password=MARKER)
    url = reverse("instance-edit", args=[instance.pk])
    operator_client.post(url, instance_form(registry_username="myuser", registry_password="", image_tag="2"))
    assert only("instance.change").changes == {"image_tag": ["1.2", "2"]}
    instance.refresh_from_db()
    assert instance.registry_password == MARKER


def test_it_records_an_aws_secret_as_changed_and_a_kept_one_not_at_all(operator_client):
    ecr = {"image_name": f"{ECR}/team/app", "registry_url": ECR, "aws_auth": "keys", "aws_access_key_id": "AKIAKEY1"}
    instance = create(operator_client, **ecr, aws_secret_access_key="aws-" + MARKER)
    assert only("instance.create").changes["aws_secret_access_key"] == "changed"
    url = reverse("instance-edit", args=[instance.pk])
    operator_client.post(url, instance_form(**{**ecr, "aws_access_key_id": "AKIAKEY2"}))
    changes = only("instance.change").changes
    assert changes["aws_access_key_id"] == ["AKIAKEY1", "AKIAKEY2"]
    assert "aws_secret_access_key" not in changes


def test_the_marker_password_is_nowhere_in_the_audit_table(operator_client, admin_client):
    instance = create(operator_client, registry_username="myuser", registry_password=MARKER)
    edit = reverse("instance-edit", args=[instance.pk])
    operator_client.post(edit, instance_form(registry_username="myuser", registry_password=MARKER + "2"))
    operator_client.post(reverse("registry-check"), instance_form(registry_password=MARKER + "3"))
    ecr = {"image_name": f"{ECR}/team/app", "registry_url": ECR, "aws_auth": "keys", "aws_access_key_id": "AKIAK"}
    create(operator_client, name="ecr", **ecr, aws_secret_access_key=MARKER + "4")
    change = reverse("admin:orchestrator_containerinstance_change", args=[instance.pk])
    admin_client.post(change, admin_form_data(admin_client, change, registry_password=MARKER + "5"))
    Client().post(reverse("login"), {"username": "otto-operator", "password": MARKER + "6"})
    assert entries("instance.change").count() == 2 and entries("login.failed").exists()
    table = whole_table()
    for suffix in ("", "2", "3", "4", "5", "6"):
        for form in forms_of(MARKER + suffix):
            assert form not in table
    assert "fernet:" not in table  # not even encrypted


def test_it_finds_secret_fields_by_their_type_not_their_name():
    assert secret_fields(ContainerInstance) == {"registry_password", "aws_secret_access_key"}

    class Meta:
        concrete_fields = [EncryptedTextField(name="api_token"), EncryptedTextField(name="x"), Group._meta.pk]

    assert secret_fields(type("Future", (), {"_meta": Meta})) == {"api_token", "x"}


def test_it_never_writes_a_decrypted_secret_even_if_a_caller_passes_one():
    entry = record(None, "instance.change", changes={"token": [Secret("old-" + MARKER), Secret(MARKER)]})
    assert entry.changes == {"token": "changed"}
    assert MARKER not in whole_table()


def test_it_records_a_deleted_instance_and_keeps_the_names_of_its_entries(operator_client, operator):
    instance = create(operator_client)
    operator_client.post(reverse("instance-delete", args=[instance.pk]), REMOTE_ADDR=ADDRESS)
    entry = only("instance.delete")
    assert (entry.user, entry.address, entry.instance, entry.instance_name) == (operator, ADDRESS, None, "web")
    created = only("instance.create")
    assert created.instance is None and created.instance_name == "web"


def test_it_records_the_admin_s_save_and_delete_with_the_admin_s_address(admin_client, admin_user):
    add = reverse("admin:orchestrator_containerinstance_add")
    data = admin_form_data(
        admin_client,
        add,
        name="adm",
        image_name="busybox",
        image_tag="1",
        registry_username="u",
        registry_password=MARKER,
    )
    response = admin_client.post(add, data, REMOTE_ADDR=ADDRESS)
    assert response.status_code == 302, response.context["adminform"].form.errors
    instance = ContainerInstance.objects.get(name="adm")
    entry = only("instance.create")
    assert (entry.user, entry.address, entry.instance) == (admin_user, ADDRESS, instance)
    assert entry.changes["image_name"] == ["", "busybox"] and entry.changes["registry_password"] == "changed"
    change = reverse("admin:orchestrator_containerinstance_change", args=[instance.pk])
    admin_client.post(change, admin_form_data(admin_client, change, image_tag="2"), REMOTE_ADDR=ADDRESS)
    assert only("instance.change").changes == {"image_tag": ["1", "2"]}
    admin_client.post(reverse("admin:orchestrator_containerinstance_delete", args=[instance.pk]), {"post": "yes"})
    assert only("instance.delete").instance_name == "adm"


# --- pulls, access checks, containers ---------------------------------------------------------------


def test_it_records_a_pull_queued_from_the_button_and_from_the_save(operator_client, operator):
    instance = create(operator_client, enabled="on")
    saved = only("pull.queue")
    job = PullJob.objects.get()
    assert saved.message == f"pull #{job.pk} queued by the save" and saved.address == ADDRESS
    operator_client.post(reverse("instance-pull", args=[instance.pk]), REMOTE_ADDR=ADDRESS)
    again = entries("pull.queue").last()
    assert (again.user, again.instance, again.address) == (operator, instance, ADDRESS)
    assert again.message == f"pull #{job.pk} already under way"


def test_it_records_the_admin_s_pull_now(admin_client, admin_user):
    instance = ContainerInstance.objects.create(name="adm", image_name="busybox")
    admin_client.post(
        reverse("admin:orchestrator_containerinstance_changelist"),
        {"action": "pull_now", "_selected_action": [instance.pk]},
        REMOTE_ADDR=ADDRESS,
    )
    entry = only("pull.queue")
    assert (entry.user, entry.instance, entry.address) == (admin_user, instance, ADDRESS)
    assert entry.message.endswith("queued from the admin")


def test_it_records_a_cancelled_pull(operator_client, operator):
    instance = ContainerInstance.objects.create(name="web", image_name="busybox")
    job = PullJob.objects.create(instance=instance, reference="docker.io/library/busybox:latest")
    operator_client.post(reverse("pull-cancel", args=[job.pk]), REMOTE_ADDR=ADDRESS)
    entry = only("pull.cancel")
    assert (entry.user, entry.instance, entry.address) == (operator, instance, ADDRESS)
    assert entry.message == f"pull #{job.pk} cancelling"


def test_it_records_an_access_check_with_its_outcome(answering_agent, operator_client, operator):
    instance = create(operator_client, registry_username="myuser", registry_password=MARKER)
    data = instance_form(registry_username="myuser", instance=instance.pk)
    response = operator_client.post(reverse("registry-check"), data, REMOTE_ADDR=ADDRESS)
    assert response.json()["error"]["code"] == "daemon_unreachable"
    entry = only("access.check")
    assert (entry.user, entry.instance, entry.address) == (operator, instance, ADDRESS)
    assert entry.message == "failed: daemon_unreachable (myuser/myapp:1.2)"


@pytest.mark.parametrize("action", ["start", "stop", "restart"])
def test_it_records_a_container_action_that_failed_with_its_code(answering_agent, operator_client, operator, action):
    instance = ContainerInstance.objects.create(name="web", image_name="busybox", enabled=True)
    url = reverse("container-action", args=[instance.pk, action])
    page = operator_client.post(url, REMOTE_ADDR=ADDRESS, follow=True).content.decode()
    assert "daemon" in page.lower()  # no daemon in unit tests: the view answers with the daemon's error
    entry = only(f"container.{action}")
    assert (entry.user, entry.instance, entry.address) == (operator, instance, ADDRESS)
    assert entry.message == "failed: daemon_unreachable"


# --- sign-ins ---------------------------------------------------------------------------------------


def test_it_records_a_login_and_a_logout(operator):
    client = Client()
    client.post(reverse("login"), {"username": "otto-operator", "password": "pw-otto-operator"}, REMOTE_ADDR=ADDRESS)
    login = only("login")
    assert (login.user, login.username, login.address) == (operator, "otto-operator", ADDRESS)
    client.post(reverse("logout"), REMOTE_ADDR=ADDRESS)
    logout = only("logout")
    assert (logout.user, logout.address) == (operator, ADDRESS)


def test_it_records_a_failed_login_with_the_name_tried_and_never_the_password(operator):
    Client().post(reverse("login"), {"username": "otto-operator", "password": MARKER}, REMOTE_ADDR=ADDRESS)
    Client().post(reverse("login"), {"username": "nobody-" + "x" * 200, "password": MARKER}, REMOTE_ADDR=ADDRESS)
    first, second = entries("login.failed")
    assert (first.user, first.username, first.address) == (None, "otto-operator", ADDRESS)
    assert second.username == ("nobody-" + "x" * 200)[:150]
    assert not entries("login").exists()
    for form in forms_of(MARKER):
        assert form not in whole_table()


def test_it_takes_the_address_by_the_same_rule_as_the_login_throttle(settings, operator_client):
    # Behind a proxy, settings.py gives axes a callable that reads the proxy's header: the audit log uses it too.
    settings.AXES_CLIENT_IP_CALLABLE = lambda request: request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")[-1]
    Client().post(
        reverse("login"),
        {"username": "otto-operator", "password": "wrong"},
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="203.0.113.9",
    )
    assert only("login.failed").address == "203.0.113.9"
    operator_client.post(reverse("instance-create"), instance_form(), REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="x")
    assert only("instance.create").address is None  # not an address: left out rather than stored


# --- roles and permissions --------------------------------------------------------------------------


def test_it_records_set_role_once_with_the_runner_and_manage_py(operator, monkeypatch):
    monkeypatch.setenv("LOGNAME", "ops-person")
    before = AuditEntry.objects.count()
    call_command("set_role", "otto-operator", "admin", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert AuditEntry.objects.count() == before + 1
    entry = AuditEntry.objects.latest("pk")
    assert (entry.action, entry.user, entry.username, entry.address) == ("role.change", None, "ops-person", None)
    assert entry.changes == {"groups": [["operator"], ["admin"]], "is_staff": [False, True]}
    assert "manage.py" in entry.message and "otto-operator" in entry.message


def test_it_records_a_role_change_through_the_admin_s_group_membership(admin_client, admin_user, operator):
    url = reverse("admin:auth_user_change", args=[operator.pk])
    permission = Permission.objects.get(codename="view_pulljob")
    data = admin_form_data(
        admin_client,
        url,
        groups=[Group.objects.get(name="admin").pk],
        user_permissions=[permission.pk],
        is_staff="on",
    )
    before = AuditEntry.objects.filter(action__in=["role.change", "permission.change"]).count()
    response = admin_client.post(url, data, REMOTE_ADDR=ADDRESS)
    assert response.status_code == 302, response.context["adminform"].form.errors
    made = AuditEntry.objects.filter(action__in=["role.change", "permission.change"]).order_by("pk")[before:]
    role, permissions = made
    assert (role.action, role.user, role.address) == ("role.change", admin_user, ADDRESS)
    assert role.changes == {"is_staff": [False, True], "groups": [["operator"], ["admin"]]}
    assert role.message == "user otto-operator"
    assert permissions.action == "permission.change" and permissions.user == admin_user
    assert permissions.changes == {"user_permissions": [[], ["orchestrator.view_pulljob"]]}


def test_it_records_a_group_s_permissions_and_a_superuser_flag(admin_client, admin_user, operator):
    group = Group.objects.get(name="viewer")
    old = sorted(f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all())
    url = reverse("admin:auth_group_change", args=[group.pk])
    added = Permission.objects.get(codename="pull_containerinstance")
    data = {"name": "viewer", "permissions": [*group.permissions.values_list("pk", flat=True), added.pk]}
    assert admin_client.post(url, data, REMOTE_ADDR=ADDRESS).status_code == 302
    entry = entries("permission.change").last()
    assert (entry.user, entry.address, entry.message) == (admin_user, ADDRESS, "group viewer")
    assert entry.changes == {"permissions": [old, sorted([*old, "orchestrator.pull_containerinstance"])]}
    operator.is_superuser = True
    operator.save()
    flag = entries("role.change").last()
    assert flag.changes == {"is_superuser": [False, True]} and flag.message.startswith("user otto-operator")


# --- the page ---------------------------------------------------------------------------------------


def test_operators_and_viewers_may_not_see_the_audit_log(operator_client, viewer_client, client):
    assert operator_client.get(reverse("audit")).status_code == 403
    assert viewer_client.get(reverse("audit")).status_code == 403
    assert client.get(reverse("audit")).status_code == 302  # to the login page
    assert 'href="/audit/"' not in operator_client.get(reverse("instance-list")).content.decode()


def test_admins_see_the_audit_log_and_its_link(admin_role_client, admin_client):
    record(None, "instance.create", username="someone", message="hello-entry")
    page = admin_role_client.get(reverse("audit"))
    assert page.status_code == 200
    assert "hello-entry" in page.content.decode()
    assert 'href="/audit/"' in admin_role_client.get(reverse("instance-list")).content.decode()
    assert admin_client.get(reverse("audit")).status_code == 200


def shown(client, **query) -> list[str]:
    response = client.get(reverse("audit"), query)
    assert response.status_code == 200
    return [entry.message for entry in response.context["page"].object_list]


def test_the_audit_log_filters_by_user_instance_action_and_time(admin_role_client):
    # Yesterday noon: "an hour ago" and "a day ago" fall on different dates at any time of day the test runs.
    now = (timezone.now() - timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)
    AuditEntry.objects.all().delete()
    rows = [
        ("alice", "instance.create", "web", now - timedelta(days=3), "a1"),
        ("alice", "pull.queue", "db", now - timedelta(days=1), "a2"),
        ("bob", "container.stop", "web-2", now - timedelta(hours=1), "b1"),
        ("bobby", "login.failed", "", now - timedelta(minutes=5), "b2"),
    ]
    for username, action, name, at, message in rows:
        AuditEntry.objects.create(username=username, action=action, instance_name=name, at=at, message=message)
    assert shown(admin_role_client) == ["b2", "b1", "a2", "a1"]  # newest first
    assert shown(admin_role_client, user="BOB") == ["b1"]
    assert shown(admin_role_client, instance="web") == ["b1", "a1"]
    assert shown(admin_role_client, action="pull.queue") == ["a2"]
    day = (now - timedelta(days=1)).date().isoformat()
    assert shown(admin_role_client, **{"from": day, "to": day}) == ["a2"]
    since = (now - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    assert shown(admin_role_client, **{"from": since}) == ["b2", "b1"]
    response = admin_role_client.get(reverse("audit"), {"from": "yesterday"})
    assert "is not a date" in response.content.decode() and len(response.context["page"].object_list) == 4


def test_the_audit_log_pages_by_fifty_and_keeps_the_filter(admin_role_client):
    now = timezone.now()
    AuditEntry.objects.bulk_create(
        AuditEntry(username="carol", action="pull.queue", at=now - timedelta(seconds=i), message=str(i))
        for i in range(120)
    )
    response = admin_role_client.get(reverse("audit"), {"user": "carol"})
    page = response.context["page"]
    assert len(page.object_list) == 50 and page.paginator.num_pages == 3
    assert [entry.message for entry in page.object_list][:2] == ["0", "1"]
    assert "?user=carol&amp;page=2" in response.content.decode()
    last = admin_role_client.get(reverse("audit"), {"user": "carol", "page": 3}).context["page"]
    assert [entry.message for entry in last.object_list][-1] == "119"


def test_the_admin_shows_the_audit_log_read_only(admin_client):
    entry = record(None, "login.failed", username="mallory")
    assert admin_client.get(reverse("admin:orchestrator_auditentry_changelist"), {"q": "mallory"}).status_code == 200
    assert admin_client.get(reverse("admin:orchestrator_auditentry_add")).status_code == 403
    change = reverse("admin:orchestrator_auditentry_change", args=[entry.pk])
    assert admin_client.post(change, {"username": "someone-else"}).status_code == 403
    assert admin_client.post(reverse("admin:orchestrator_auditentry_delete", args=[entry.pk])).status_code == 403
    entry.refresh_from_db()
    assert entry.username == "mallory"


# --- pruning ----------------------------------------------------------------------------------------


def old_and_new() -> tuple[AuditEntry, AuditEntry]:
    now = timezone.now()
    old = AuditEntry.objects.create(action="login", username="old", at=now - timedelta(days=400))
    new = AuditEntry.objects.create(action="login", username="new", at=now - timedelta(days=10))
    return old, new


def test_pruning_removes_entries_older_than_audit_keep_days_and_keeps_newer_ones(settings):
    settings.AUDIT_KEEP_DAYS = 365
    old, new = old_and_new()
    call_command("prune_audit", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert not AuditEntry.objects.filter(pk=old.pk).exists()
    assert AuditEntry.objects.filter(pk=new.pk).exists()
    settings.AUDIT_KEEP_DAYS = 5
    assert prune() == 1
    assert not AuditEntry.objects.filter(pk=new.pk).exists()


def test_audit_keep_days_zero_keeps_everything(settings):
    settings.AUDIT_KEEP_DAYS = 0
    old, _ = old_and_new()
    assert prune() == 0 and AuditEntry.objects.filter(pk=old.pk).exists()


def test_recording_prunes_at_most_once_a_day(settings, django_capture_on_commit_callbacks):
    settings.AUDIT_KEEP_DAYS = 365
    cache.delete(LAST_PRUNE_KEY)
    old, new = old_and_new()
    with django_capture_on_commit_callbacks(execute=True):
        record(None, "login", username="someone")
    assert not AuditEntry.objects.filter(pk=old.pk).exists() and AuditEntry.objects.filter(pk=new.pk).exists()
    older, _ = old_and_new()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        record(None, "login", username="someone")
    assert not callbacks  # pruned today already: not even scheduled
    assert AuditEntry.objects.filter(pk=older.pk).exists()

"""Secrets at rest: encrypted, write-only, rotatable, never in a dump, and production refuses to start without keys."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from orchestrator.models import ContainerInstance

pytestmark = pytest.mark.django_db
REPO = Path(__file__).resolve().parents[2]
MARKER = "pw-marker-7Qz"


def raw_password(pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT registry_password FROM orchestrator_containerinstance WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def test_a_password_is_stored_as_a_fernet_token_and_read_back():
    instance = ContainerInstance.objects.create(name="a", image_name="busybox", registry_password=MARKER)
    assert MARKER not in raw_password(instance.pk)
    assert ContainerInstance.objects.get(pk=instance.pk).registry_password == MARKER


def test_repr_and_str_never_show_the_password():
    instance = ContainerInstance.objects.create(name="a", image_name="busybox", registry_password=MARKER)
    instance = ContainerInstance.objects.get(pk=instance.pk)
    assert MARKER not in repr(instance) and MARKER not in str(instance)
    assert MARKER not in repr(instance.registry_password)
    assert MARKER not in repr(instance.__dict__)


def test_dumpdata_writes_tokens_and_loaddata_reads_them_back(tmp_path):
    ContainerInstance.objects.create(name="a", image_name="busybox", registry_password=MARKER)
    out = io.StringIO()
    call_command("dumpdata", "orchestrator", stdout=out)
    dump = out.getvalue()
    assert MARKER not in dump
    assert "fernet:" in dump
    ContainerInstance.objects.all().delete()
    fixture = tmp_path / "dump.json"
    fixture.write_text(dump)
    call_command("loaddata", str(fixture), verbosity=0)
    assert ContainerInstance.objects.get(name="a").registry_password == MARKER


def test_rotate_secrets_re_encrypts_with_the_newest_key(settings):
    old_keys = list(settings.FIELD_ENCRYPTION_KEYS)
    instance = ContainerInstance.objects.create(
        name="a", image_name="busybox", registry_password=MARKER, aws_secret_access_key="aws-" + MARKER
    )
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, *old_keys]
    call_command("rotate_secrets", stdout=io.StringIO())
    token = raw_password(instance.pk).removeprefix("fernet:")
    assert Fernet(new_key.encode()).decrypt(token.encode()).decode() == MARKER
    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key can go now
    again = ContainerInstance.objects.get(pk=instance.pk)
    assert again.registry_password == MARKER
    assert again.aws_secret_access_key == "aws-" + MARKER


def test_a_wrong_key_gives_a_clear_error_without_the_token(settings):
    from django.core.exceptions import ImproperlyConfigured

    instance = ContainerInstance.objects.create(name="a", image_name="busybox", registry_password=MARKER)
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(ImproperlyConfigured) as error:
        ContainerInstance.objects.get(pk=instance.pk)
    assert "fernet:" not in str(error.value) and "FIELD_ENCRYPTION_KEY" in str(error.value)


def run_manage(args: list[str], env: dict) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env={**base, **env}, capture_output=True, text=True, timeout=120
    )


PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "k" * 20 + "Zq3-random-enough-secret-key-for-tests-0123456789",
    "DJANGO_ALLOWED_HOSTS": "console.example.com",
}


def test_production_refuses_to_start_without_the_encryption_key(tmp_path):
    result = run_manage(["check"], {**PRODUCTION, "DATA_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEY" in result.stderr


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    result = run_manage(["check"], {"DJANGO_DEBUG": "0", "DATA_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_check_deploy_is_clean_in_production_with_keys_from_files(tmp_path):
    key_file = tmp_path / "field.key"
    key_file.write_text(Fernet.generate_key().decode() + "\n")
    result = run_manage(
        ["check", "--deploy", "--fail-level", "WARNING"],
        {**PRODUCTION, "DATA_DIR": str(tmp_path), "FIELD_ENCRYPTION_KEY_FILE": str(key_file)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_development_generates_keys_once_and_keeps_them(tmp_path):
    env = {"DATA_DIR": str(tmp_path)}
    assert run_manage(["check"], env).returncode == 0
    key = (tmp_path / "field_encryption_key").read_text()
    assert oct((tmp_path / "field_encryption_key").stat().st_mode & 0o777) == "0o600"
    assert run_manage(["check"], env).returncode == 0
    assert (tmp_path / "field_encryption_key").read_text() == key
    json.dumps(key)  # a plain text key, no surprises

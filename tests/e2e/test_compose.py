"""docker-compose.yml is valid for Compose (Debian's docker-compose 1.29, installed by tests/stack/install.sh)."""

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
# Compose reads .env from the project folder; a developer's own must not decide these tests.
EMPTY_ENV = REPO / "tests" / "e2e" / "empty.env"


def test_compose_accepts_the_file_and_mounts_the_docker_socket_into_the_worker():
    tool = shutil.which("docker-compose")
    assert tool, "docker-compose is missing: run tests/stack/install.sh"
    env = {
        "PATH": "/usr/bin:/bin:/usr/local/bin",
        "DJANGO_SECRET_KEY": "x",
        "FIELD_ENCRYPTION_KEY": "y",
        "POSTGRES_PASSWORD": "z",
    }
    checked = subprocess.run(
        [tool, "--env-file", str(EMPTY_ENV), "-f", "docker-compose.yml", "config", "-q"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    rendered = subprocess.run(
        [tool, "--env-file", str(EMPTY_ENV), "-f", "docker-compose.yml", "config"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    config = rendered.stdout
    assert "/var/run/docker.sock:/var/run/docker.sock" in config
    for service in ("web:", "worker:", "redis:", "postgres:"):
        assert f"  {service}" in config
    missing = subprocess.run(
        [tool, "--env-file", str(EMPTY_ENV), "-f", "docker-compose.yml", "config", "-q"],
        cwd=REPO,
        env={"PATH": env["PATH"]},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode != 0 and "DJANGO_SECRET_KEY" in missing.stderr


def test_check_deploy_is_clean_with_the_compose_environment(tmp_path):
    import os
    import sys

    import yaml
    from cryptography.fernet import Fernet

    tool = shutil.which("docker-compose")
    assert tool, "docker-compose is missing: run tests/stack/install.sh"
    keys = {
        "DJANGO_SECRET_KEY": "compose-check-" + "k" * 50,
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "POSTGRES_PASSWORD": "z",
    }
    rendered = subprocess.run(
        [tool, "--env-file", str(EMPTY_ENV), "-f", "docker-compose.yml", "config"],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", **keys},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rendered.returncode == 0, rendered.stderr
    web = yaml.safe_load(rendered.stdout)["services"]["web"]["environment"]
    env = {"PATH": os.environ["PATH"], "DATA_DIR": str(tmp_path), **{k: str(v) for k, v in web.items()}}
    env.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator.settings")
    checked = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert web["DJANGO_DEBUG"] == "0"
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "no issues" in checked.stdout

"""docker-compose.yml is valid for Compose (Debian's docker-compose 1.29, installed by tests/stack/install.sh)."""

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


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
        [tool, "-f", "docker-compose.yml", "config", "-q"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    rendered = subprocess.run(
        [tool, "-f", "docker-compose.yml", "config"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    config = rendered.stdout
    assert "/var/run/docker.sock:/var/run/docker.sock" in config
    for service in ("web:", "worker:", "redis:", "postgres:"):
        assert f"  {service}" in config
    missing = subprocess.run(
        [tool, "-f", "docker-compose.yml", "config", "-q"],
        cwd=REPO,
        env={"PATH": env["PATH"]},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode != 0 and "DJANGO_SECRET_KEY" in missing.stderr

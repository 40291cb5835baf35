"""The compose files are valid for Compose (Debian's docker-compose 1.29, installed by tests/stack/install.sh).

docker-compose.yml is the console side (web, Redis, Postgres; no Docker socket anywhere),
docker-compose.gateway.yml the gateway side (the agent, with the socket, and no database setting or key of the
console: it needs only CONSOLE_URL, GATEWAY_TOKEN, CELERY_BROKER_URL and DOCKER_HOST).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
CONSOLE = "docker-compose.yml"
GATEWAY = "docker-compose.gateway.yml"
SOCKET = "/var/run/docker.sock:/var/run/docker.sock"
# Only these from the process: the values come from the env file each test writes, as they would from .env.
BARE_ENV = {"PATH": "/usr/bin:/bin:/usr/local/bin"}
CONSOLE_VALUES = {
    "DJANGO_SECRET_KEY": "x",
    "FIELD_ENCRYPTION_KEY": "y",
    "POSTGRES_PASSWORD": "z",
}
GATEWAY_VALUES = {
    "CONSOLE_URL": "https://console.example.com",
    "GATEWAY_TOKEN": "gwt_compose-test-token",
    "CELERY_BROKER_URL": "redis://:secret@console.example.com:6379/0",
}
# What an agent must never be given: the console's database and keys (orchestrator/conf/agent.py runs without them).
CONSOLE_ONLY = ("DATABASE_", "POSTGRES_", "FIELD_ENCRYPTION_KEY", "DJANGO_SECRET_KEY", "PGSSLMODE")


def _tool() -> str:
    tool = shutil.which("docker-compose")
    assert tool, "docker-compose is missing: run tests/stack/install.sh"
    return tool


def _env_file(folder: Path, values: dict[str, str]) -> Path:
    # Compose reads .env from the project folder; a developer's own must not decide these tests.
    path = folder / "compose.env"
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    return path


def _compose(env_file: Path, *files: str, quiet: bool = False) -> subprocess.CompletedProcess:
    argv = [_tool(), "--env-file", str(env_file)]
    for name in files:
        argv += ["-f", name]
    argv += ["config", "-q"] if quiet else ["config"]
    return subprocess.run(argv, cwd=REPO, env=BARE_ENV, capture_output=True, text=True, timeout=60)


def _services(env_file: Path, *files: str) -> dict:
    checked = _compose(env_file, *files, quiet=True)
    assert checked.returncode == 0, checked.stderr
    rendered = _compose(env_file, *files)
    assert rendered.returncode == 0, rendered.stderr
    return yaml.safe_load(rendered.stdout)["services"]


def _published(service: dict) -> list[str]:
    return [str(port) for port in service.get("ports", [])]


def _console_only(environment: dict) -> list[str]:
    return sorted(key for key in environment if key.startswith(CONSOLE_ONLY))


def test_console_file_runs_web_redis_postgres_and_mounts_no_docker_socket(tmp_path):
    services = _services(_env_file(tmp_path, CONSOLE_VALUES), CONSOLE)
    assert set(services) == {"web", "redis", "postgres"}
    assert "docker.sock" not in (REPO / CONSOLE).read_text()
    for name, service in services.items():
        assert not any("docker.sock" in str(volume) for volume in service.get("volumes", [])), name
        assert "DOCKER_HOST" not in service.get("environment", {}), name
    web = services["web"]
    assert web["environment"]["DJANGO_DEBUG"] == "0"
    assert web["environment"]["CELERY_BROKER_URL"] == "redis://:@redis:6379/0"
    assert web["environment"]["DATABASE_HOST"] == "postgres"
    # The web is for a TLS proxy on this host; Redis and Postgres, for the agents, stay on loopback by default.
    assert _published(web) == ["127.0.0.1:8000:8000/tcp"]
    assert _published(services["redis"]) == ["127.0.0.1:6379:6379/tcp"]
    assert _published(services["postgres"]) == ["127.0.0.1:5432:5432/tcp"]

    opened = _services(
        _env_file(tmp_path, {**CONSOLE_VALUES, "REDIS_PASSWORD": "abc123", "REDIS_PUBLISH": "0.0.0.0:6380"}), CONSOLE
    )
    assert opened["web"]["environment"]["CELERY_BROKER_URL"] == "redis://:abc123@redis:6379/0"
    assert opened["redis"]["environment"]["REDIS_PASSWORD"] == "abc123"
    assert "--requirepass" in " ".join(opened["redis"]["command"])
    assert _published(opened["redis"]) == ["0.0.0.0:6380:6379/tcp"]


def test_console_file_refuses_to_start_without_its_secrets(tmp_path):
    missing = _compose(_env_file(tmp_path, {}), CONSOLE, quiet=True)
    assert missing.returncode != 0 and "DJANGO_SECRET_KEY" in missing.stderr


def test_gateway_file_runs_the_agent_with_the_docker_socket(tmp_path):
    services = _services(_env_file(tmp_path, GATEWAY_VALUES), GATEWAY)
    assert set(services) == {"agent"}
    agent = services["agent"]
    assert agent["image"] == "container-orchestrator-console:latest" and "build" in agent
    assert agent["command"] == "python manage.py agent -l info"
    assert agent["restart"] == "unless-stopped"
    assert any(str(volume).startswith(SOCKET) for volume in agent["volumes"])
    assert any(str(volume).endswith(":/data:rw") for volume in agent["volumes"])
    env = agent["environment"]
    for key, value in GATEWAY_VALUES.items():
        assert env[key] == value, key
    assert env["DOCKER_HOST"] == "unix:///var/run/docker.sock"
    assert env["DATA_DIR"] == "/data" and env["DJANGO_DEBUG"] == "0"
    # No database setting and no key of the console: the agent talks to the console through its API only.
    assert _console_only(env) == [], env
    text = (REPO / GATEWAY).read_text()
    for name in ("DATABASE_", "FIELD_ENCRYPTION_KEY", "DJANGO_SECRET_KEY", "POSTGRES"):
        assert name not in text, name
    assert "ports" not in agent, "the agent only connects out"


@pytest.mark.parametrize("variable", ["GATEWAY_TOKEN", "CELERY_BROKER_URL", "CONSOLE_URL"])
def test_gateway_file_refuses_to_validate_without_a_required_variable(tmp_path, variable):
    values = {key: value for key, value in GATEWAY_VALUES.items() if key != variable}
    missing = _compose(_env_file(tmp_path, values), GATEWAY, quiet=True)
    assert missing.returncode != 0
    # docker-compose 1.29 prints the service's raw environment first; the reason comes last.
    assert f'in service "agent": set {variable} in .env' in missing.stderr, missing.stderr


def test_both_files_merge_into_a_console_with_a_gateway_on_the_same_host(tmp_path):
    values = {**CONSOLE_VALUES, **GATEWAY_VALUES, "CELERY_BROKER_URL": "redis://redis:6379/0"}
    services = _services(_env_file(tmp_path, values), CONSOLE, GATEWAY)
    assert set(services) == {"web", "redis", "postgres", "agent"}
    assert any(str(volume).startswith(SOCKET) for volume in services["agent"]["volumes"])
    assert not any("docker.sock" in str(volume) for volume in services["web"]["volumes"])
    # One .env holds the console's secrets, and still the agent's service gets none of them.
    assert _console_only(services["agent"]["environment"]) == []
    assert services["agent"]["environment"]["CELERY_BROKER_URL"] == "redis://redis:6379/0"


def _manage(environment: dict, data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """manage.py with only the environment a compose service would get (and DATA_DIR in the test's folder)."""
    env = {"PATH": os.environ["PATH"], **{k: str(v) for k, v in environment.items()}, "DATA_DIR": str(data_dir)}
    env.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator.settings")
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_is_clean_with_the_compose_environment(tmp_path):
    from cryptography.fernet import Fernet

    keys = {
        "DJANGO_SECRET_KEY": "compose-check-" + "k" * 50,
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "POSTGRES_PASSWORD": "z",
    }
    web = _services(_env_file(tmp_path, keys), CONSOLE)["web"]["environment"]
    assert web["DJANGO_DEBUG"] == "0"
    checked = _manage(web, tmp_path / "web", "check", "--deploy", "--fail-level", "WARNING")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "no issues" in checked.stdout


def test_the_agent_starts_django_with_the_gateway_environment_alone(tmp_path):
    """The agent's settings load from what the gateway file gives it; the console's would not (no key in it)."""
    agent = _services(_env_file(tmp_path, GATEWAY_VALUES), GATEWAY)["agent"]["environment"]
    shown = _manage(agent, tmp_path / "agent", "agent", "--help")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "GATEWAY_TOKEN" in shown.stdout
    # The same environment cannot run the console: production settings refuse to start without its keys.
    console = _manage(agent, tmp_path / "console", "check")
    assert console.returncode != 0 and "DJANGO_SECRET_KEY" in console.stderr, console.stdout + console.stderr

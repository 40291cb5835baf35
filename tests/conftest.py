"""Shared fixtures: users for each role, the real service stack, and a real Celery worker.

The stack (sandboxed dockerd, password-protected registry, redis) starts once per
session, only when a test asks for it. ``make test`` may start it beforehand and
pass its state directory in STACK_STATE; otherwise the fixture starts and stops
its own. With REQUIRE_E2E=1 (``make test`` sets it) the session fails if no
end-to-end test ran or any was skipped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

_E2E = {"passed": 0, "skipped": 0, "failed": 0}


def pytest_runtest_logreport(report) -> None:
    if "e2e" not in report.keywords:
        return
    if report.skipped:
        _E2E["skipped"] += 1
    elif report.when == "call":
        _E2E["passed" if report.passed else "failed"] += 1


def pytest_sessionfinish(session, exitstatus) -> None:
    if os.environ.get("REQUIRE_E2E") != "1" or session.config.option.collectonly:
        return
    if _E2E["passed"] == 0 or _E2E["skipped"]:
        session.exitstatus = 1
        print(
            f"\nREQUIRE_E2E=1: end-to-end tests passed={_E2E['passed']} skipped={_E2E['skipped']}; "
            "they must run, and none may be skipped.",
            file=sys.stderr,
        )


# --- users ---------------------------------------------------------------------


def _user(django_user_model, username: str, role: str | None):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user(username=username, password="pw-" + username)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def viewer(db, django_user_model):
    return _user(django_user_model, "vera-viewer", "viewer")


@pytest.fixture
def operator(db, django_user_model):
    return _user(django_user_model, "otto-operator", "operator")


@pytest.fixture
def operator_client(operator):
    from django.test import Client

    client = Client()  # its own client: a test may use several roles at once
    client.force_login(operator)
    return client


@pytest.fixture
def viewer_client(viewer):
    from django.test import Client

    client = Client()
    client.force_login(viewer)
    return client


# --- the real stack --------------------------------------------------------------


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    from tests.stack import StackInfo, start_stack, stop_stack

    state = os.environ.get("STACK_STATE")
    if state and (Path(state) / "stack.json").exists():
        yield StackInfo.from_json((Path(state) / "stack.json").read_text())
        return
    state_dir = tmp_path_factory.mktemp("stack")
    # With the ECR part (moto + a TLS registry answering as an ECR host on port 443, so one per machine).
    # TESTS_STACK_ECR=0 leaves it out for parallel development runs; the ECR tests then fail, never skip.
    with_ecr = os.environ.get("TESTS_STACK_ECR", "1") == "1"
    if with_ecr:
        _wait_for_port_443()
    info = start_stack(state_dir, with_ecr=with_ecr)
    try:
        yield info
    finally:
        stop_stack(state_dir)


def _wait_for_port_443(timeout: float = 900) -> None:
    """Another test session on this machine may hold the ECR registry's port for a while: queue behind it."""
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", 443)) != 0:
                return
        time.sleep(2)


@dataclass
class Worker:
    process: subprocess.Popen
    log_path: Path
    env: dict

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_worker(
    env: dict, log_path: Path, name: str = "test", gateway: str = "local", agent_args: tuple[str, ...] = ()
) -> Worker:
    """The agent of ``gateway`` (`manage.py agent`, its thread pool as shipped), as `make run` starts it.

    ``agent_args`` adds options (``--pool prefork`` for the test of a killed pool process). Needs database access
    (to rotate the gateway's token); the agent itself has none.
    """
    from orchestrator.gateways.actions import rotate_token
    from orchestrator.models import Gateway

    # A fresh token at each start: a transactional test's flush forgets the last one.
    Gateway.objects.get_or_create(name=gateway)
    env = {**env, "GATEWAY_TOKEN": rotate_token(gateway)}
    log_file = open(log_path, "a")  # noqa: SIM115 - the child writes it for its whole life
    process = subprocess.Popen(
        [sys.executable, "manage.py", "agent", "-l", "info", "--hostname", f"{name}@%h", *agent_args],
        cwd=REPO,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Celery worker exited at start:\n{log_path.read_text()[-3000:]}")
        if " ready." in log_path.read_text(errors="replace"):
            return Worker(process, log_path, env)
        time.sleep(0.2)
    stop_worker(Worker(process, log_path, env))
    raise RuntimeError(f"the Celery worker did not become ready in 60 s:\n{log_path.read_text()[-3000:]}")


def stop_worker(worker: Worker, sig: int = signal.SIGTERM) -> None:
    if worker.process.poll() is not None:
        return
    try:
        os.killpg(worker.process.pid, sig)
        worker.process.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(worker.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        worker.process.wait(timeout=10)


# What only the console has: an agent's environment holds none of it.
CONSOLE_ONLY = ("DATABASE_", "FIELD_ENCRYPTION_KEY", "DJANGO_SECRET_KEY")


@pytest.fixture(scope="session")
def worker_env(stack, django_db_setup, django_db_blocker, tmp_path_factory, live_server) -> dict:
    """Environment for an agent of the stack, talking to this process's live server (the console)."""
    from django.conf import settings

    from orchestrator.celery import app

    # This process sends tasks too: point it at the stack's Redis.
    app.conf.broker_url = stack.redis_url
    app.conf.broker_transport_options = {**settings.BROKER_REDIS_TRANSPORT_OPTIONS, "visibility_timeout": 3600}
    app.close()  # drop any connection pool made for the default broker
    # The web (this process) opens no Docker client: everything that touches Docker runs in an agent.
    settings.DOCKER_HOST = "unix:///nonexistent/the-web-has-no-docker.sock"
    # A loaded test machine may keep the agent's answer past a user's 5 s; the late path has its own tests.
    settings.CONTROL_WAIT_SECONDS = 30
    # The console (this process) gives a silent pull up after 15 s, and its agents beat every 2 s (a flush in a
    # transactional test forgets the last beat: the next one comes soon); they learn both figures from it.
    settings.PULL_STALE_AFTER_SECONDS = 15
    settings.GATEWAY_HEARTBEAT_SECONDS = 2
    data_dir = tmp_path_factory.mktemp("worker-data")
    # boto3 in this process (the form's check) and in the worker talks to moto, never to AWS.
    aws = {
        "AWS_ENDPOINT_URL_ECR": stack.moto_url or "",
        "AWS_ENDPOINT_URL_ECR_PUBLIC": stack.moto_url or "",
        "AWS_ACCESS_KEY_ID": "AKIACHAINCREDENTIALS",
        "AWS_SECRET_ACCESS_KEY": "chain-secret-not-real",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    os.environ.update(aws)
    # The agent runs on its own settings (orchestrator/conf/agent.py), which read none of the console's
    # database or keys; none of them is handed over either.
    own = {name: value for name, value in os.environ.items() if not name.startswith(CONSOLE_ONLY)}
    return {
        **own,
        "DATA_DIR": str(data_dir),
        "CELERY_BROKER_URL": stack.redis_url,
        "DOCKER_HOST": stack.docker_host,
        # The agent API of this test process's live server (the agents' control requests go through it).
        "CONSOLE_URL": live_server.url,
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture(scope="session")
def console_env(worker_env) -> dict:
    """Environment for a console command (`manage.py pull`) on the test database: the console's own keys."""
    from django.conf import settings
    from django.db import connection

    return {
        **worker_env,
        "DATABASE_PATH": str(connection.settings_dict["NAME"]),
        "FIELD_ENCRYPTION_KEY": ",".join(settings.FIELD_ENCRYPTION_KEYS),
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
    }


@pytest.fixture(scope="session")
def worker_process(worker_env, tmp_path_factory, django_db_blocker):
    """A real agent of the gateway `local` (a Celery worker) on the stack's Redis."""
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    with django_db_blocker.unblock():
        handle = start_worker(worker_env, log_path)
    yield handle
    stop_worker(handle)


@pytest.fixture
def worker(worker_process):
    """The agent of `local`, and `local` online: the web asks nothing of an offline gateway, and a
    transactional test's flush forgets the last beat (the next one comes within GATEWAY_HEARTBEAT_SECONDS)
    and the agent's token (bound again here, as `gateway rotate-token` had made it)."""
    from orchestrator.gateways.tokens import hash_token
    from orchestrator.models import Gateway

    Gateway.objects.get_or_create(name="local")
    Gateway.objects.filter(name="local").update(token_hash=hash_token(worker_process.env["GATEWAY_TOKEN"]))
    wait_until_online("local")
    return worker_process


def wait_until_online(name: str, timeout: float = 30) -> None:
    from orchestrator.models import Gateway

    deadline = time.monotonic() + timeout
    while not any(gateway.online for gateway in Gateway.objects.filter(name=name)):
        if time.monotonic() > deadline:
            raise AssertionError(f"the gateway {name}'s agent has not beaten for {timeout} s")
        time.sleep(0.1)

"""The real stack the benchmarks run on: dockerd, registry, Redis, gunicorn, a Celery worker, the docker CLI.

``Bench`` starts, in a fresh work directory, the stack of ``tests/stack``
(sandboxed dockerd, password registry, Redis), then configures Django in this
process for a SQLite database of its own, migrates it, collects static files,
creates an operator account, and starts the console as it is deployed
(docker-compose.yml): ``gunicorn orchestrator.wsgi --workers 2`` and ``manage.py
agent`` (the local gateway's agent, a Celery worker) with DJANGO_DEBUG=0 and the Redis broker. The
docker CLI gets a private DOCKER_CONFIG and a ``docker login`` to the registry.
Everything is stopped again by :meth:`Bench.close`.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import docker
import requests
from cryptography.fernet import Fernet

from tests.stack import StackInfo, start_stack, stop_stack
from tests.stack.images import clear_images
from tests.stack.procs import ServiceSpec, StackError, free_port, spawn, stop_service, tail, wait_for

REPO = Path(__file__).resolve().parents[1]
DOCKER_CLI = os.environ.get("BENCH_DOCKER_CLI") or shutil.which("docker") or "/usr/local/bin/docker"
USERNAME = "bench-operator"


class BenchError(RuntimeError):
    """The benchmark could not run (a service did not start, a pull failed...)."""


class Bench:
    """The running stack and console; use as a context manager."""

    def __init__(self, work_dir: Path, *, worker_concurrency: int | None = None, log=print) -> None:
        self.work_dir = work_dir.resolve()
        self.state_dir = self.work_dir / "stack"
        self.data_dir = self.work_dir / "data"
        self.docker_config = self.work_dir / "docker-config"
        self.worker_concurrency = worker_concurrency
        self.log = log
        self.info: StackInfo | None = None
        self.base_url = ""
        self.password = secrets.token_urlsafe(16)
        self.env: dict[str, str] = {}
        self._api: docker.APIClient | None = None

    # ------------------------------------------------------------ lifecycle

    def __enter__(self) -> Bench:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        started = time.monotonic()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        self.log(f"starting the stack in {self.state_dir}")
        self.info = start_stack(self.state_dir)
        self._configure_django()
        self._start_web()
        self._start_worker()
        self._cli_login()
        self.log(f"stack, console and worker up in {time.monotonic() - started:.1f} s ({self.base_url})")

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None
        if self.docker_config.exists() and self.info is not None:
            subprocess.run(
                [DOCKER_CLI, "logout", self.info.registry], env=self.cli_env(), capture_output=True, check=False
            )
            shutil.rmtree(self.docker_config, ignore_errors=True)
        if self.state_dir.exists():
            for name in ("worker", "web"):
                try:
                    stop_service(self.state_dir, name, timeout=20)
                except StackError as exc:
                    self.log(f"warning: {exc}")
            try:
                stop_stack(self.state_dir)
            except StackError as exc:
                self.log(f"warning: {exc}")

    # --------------------------------------------------------------- Django

    def _configure_django(self) -> None:
        """Environment shared by this process, the web server and the worker; then migrate and seed."""
        assert self.info is not None
        keys = self.data_dir / "keys"
        keys.mkdir(mode=0o700, exist_ok=True)
        secret_file, fernet_file = keys / "secret_key", keys / "field_encryption_key"
        for path, value in ((secret_file, secrets.token_urlsafe(50)), (fernet_file, Fernet.generate_key().decode())):
            path.write_text(value)
            path.chmod(0o600)
        self.env = {
            "DJANGO_SETTINGS_MODULE": "orchestrator.settings",
            "DJANGO_DEBUG": "0",
            # Files, not values: the service specs saved under the state dir then hold no secret.
            "DJANGO_SECRET_KEY_FILE": str(secret_file),
            "FIELD_ENCRYPTION_KEY_FILE": str(fernet_file),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "DJANGO_SECURE_COOKIES": "0",
            "DATA_DIR": str(self.data_dir),
            "DATABASE_PATH": str(self.data_dir / "bench.sqlite3"),
            "CELERY_BROKER_URL": self.info.redis_url,
            "DOCKER_HOST": self.info.docker_host,
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        for name in ("DJANGO_SECRET_KEY", "FIELD_ENCRYPTION_KEY", "DATABASE_ENGINE", "CHECK_IMAGE_ON_SAVE"):
            os.environ.pop(name, None)
        os.environ.update(self.env)
        import django

        django.setup()
        from django.contrib.auth.models import Group, User
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        call_command("collectstatic", verbosity=0, interactive=False)
        user = User.objects.create_user(USERNAME, password=self.password)
        user.groups.add(Group.objects.get(name="operator"))

    def _service_env(self) -> dict[str, str]:
        return {**self.env, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}

    def _start_web(self) -> None:
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        spec = ServiceSpec(
            name="web",
            # As docker-compose.yml runs it.
            argv=[
                sys.executable,
                "-m",
                "gunicorn",
                "orchestrator.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--threads",
                "8",
            ],
            log=str(self.work_dir / "logs" / "web.log"),
            pid_file=str(self.state_dir / "pids" / "web.pid"),
            cwd=str(REPO),
            env=self._service_env(),
        )
        spawn(spec, self.state_dir)

        def ready() -> bool:
            return requests.get(f"{self.base_url}/healthz", timeout=2).status_code == 200

        wait_for(ready, what=f"gunicorn at {self.base_url}", log=spec.log, timeout=60)

    def _start_worker(self) -> None:
        log = self.work_dir / "logs" / "worker.log"
        from orchestrator.gateways.actions import ensure_local, rotate_token

        # The agent of `local`, as `make run` starts it; its token in a file, so the saved spec holds none.
        token_file = self.state_dir / "local-gateway-token"
        token_file.write_text(rotate_token(ensure_local().name))
        token_file.chmod(0o600)
        argv = [sys.executable, "manage.py", "agent", "-l", "info", "--hostname", "bench@%h"]
        if self.worker_concurrency:
            argv += ["-c", str(self.worker_concurrency)]
        spec = ServiceSpec(
            name="worker",
            argv=argv,
            log=str(log),
            pid_file=str(self.state_dir / "pids" / "worker.pid"),
            cwd=str(REPO),
            env={
                **self._service_env(),
                "LOG_LEVEL": "INFO",
                "GATEWAY_TOKEN_FILE": str(token_file),
                "CONSOLE_URL": self.base_url,
            },
        )
        spawn(spec, self.state_dir)
        wait_for(lambda: " ready." in log.read_text(errors="replace"), what="the Celery worker", log=log, timeout=60)

    def stop_worker(self) -> None:
        stop_service(self.state_dir, "worker", timeout=20)

    def worker_log(self) -> str:
        return tail(self.work_dir / "logs" / "worker.log", 40)

    # ------------------------------------------------------ daemon and CLI

    @property
    def api(self) -> docker.APIClient:
        assert self.info is not None
        if self._api is None:
            self._api = docker.APIClient(base_url=self.info.docker_host, version="auto", timeout=300)
        return self._api

    def cli_env(self) -> dict[str, str]:
        assert self.info is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env.update(DOCKER_HOST=self.info.docker_host, DOCKER_CONFIG=str(self.docker_config))
        return env

    def _cli_login(self) -> None:
        assert self.info is not None
        self.docker_config.mkdir(mode=0o700, exist_ok=True)
        done = subprocess.run(
            [DOCKER_CLI, "login", "--username", self.info.registry_username, "--password-stdin", self.info.registry],
            input=self.info.registry_password,
            env=self.cli_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            raise BenchError(f"docker login failed: {done.stderr.strip()}")

    def cli_pull(self, reference: str) -> float:
        """``docker pull reference`` with the logged-in CLI; returns the wall time in seconds."""
        started = time.perf_counter()
        done = subprocess.run(
            [DOCKER_CLI, "pull", reference],
            env=self.cli_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=900,
        )
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise BenchError(f"docker pull {reference} failed: {done.stderr.strip()}")
        return elapsed

    def clear_images(self) -> None:
        """Remove every container and image from the daemon, then let the disk settle: the next pull starts cold."""
        for container in self.api.containers(all=True):
            self.api.remove_container(container["Id"], force=True)
        clear_images(self.api)
        os.sync()
        time.sleep(0.5)

    def docker_versions(self) -> dict[str, str]:
        server = self.api.version()
        cli = subprocess.run(
            [DOCKER_CLI, "version", "--format", "{{.Client.Version}}"],
            env=self.cli_env(),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout.strip()
        return {
            "docker_daemon": f"{server.get('Version')} (API {server.get('ApiVersion')}, "
            f"storage {self.api.info().get('Driver')})",
            "docker_cli": cli or "unknown",
        }

    def console(self):
        """A new logged-in HTTP session on the console."""
        from .console import Console

        return Console(self.base_url, USERNAME, self.password)

    def form_fields(self, reference: str, name: str) -> dict[str, str]:
        """The instance form as a user fills it in for ``reference`` in the stack's registry."""
        assert self.info is not None
        match = re.fullmatch(r"(.+):([^:/]+)", reference)
        if match is None:
            raise BenchError(f"reference without a tag: {reference}")
        return {
            "name": name,
            "enabled": "on",
            "image_name": match.group(1),
            "image_tag": match.group(2),
            "registry_url": self.info.registry,
            "registry_username": self.info.registry_username,
            "registry_password": self.info.registry_password,
            "download_retries": "1",
            "download_retry_interval": "1000",
            "download_timeout": "900",
        }

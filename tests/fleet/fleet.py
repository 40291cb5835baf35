"""A console with three gateways on one machine, every part a real process, as deployed.

``start_fleet(root)`` brings up, in ``root`` (a folder of the test run):

* PostgreSQL (tests/stack/postgres.py) as the console's database, migrated,
  with an administrator (``ensure_admin``);
* one Redis (tests/stack/redisd.py) as the broker;
* three sandboxed dockerds (tests/stack/dockerd.py), one per gateway ``fleet-a``,
  ``fleet-b``, ``fleet-c``, each added with the ``gateway add`` command, which
  prints its agent's token once (migrate, ensure_admin and the three adds run
  in one ``manage.py shell``: a Django start-up each would cost seconds);
* three agents, ``manage.py agent`` each with its own token and the
  ``DOCKER_HOST`` of its own dockerd, beating every ``HEARTBEAT_SECONDS``;
* the web process (gunicorn, as in production), whose ``DOCKER_HOST`` points
  at nothing: it must never need a Docker daemon.

The stack's password registry (the session's ``stack``) serves the images.
``Fleet.stop()`` ends all of it. Every process started here carries
``TESTS_STACK_OWNER=<pid>-<start time>`` of the test process in its
environment, so a later run finds and ends what a killed run left behind
(``reap_orphans``) without touching any live run's processes.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import docker
import requests
from cryptography.fernet import Fernet

from tests.stack import dockerd, postgres, redisd
from tests.stack.procs import MARKER_ENV, StackError, free_port, stack_processes, tail, terminate, terminate_tree

from .orphans import OWNER_ENV, all_at_once, owner_mark, reap_orphans
from .web import WebClient

REPO = Path(__file__).resolve().parents[2]
GATEWAYS = ("fleet-a", "fleet-b", "fleet-c")
# The test agents beat every 2 s (the console's default is 15), so "offline" comes within seconds.
HEARTBEAT_SECONDS = 2
# A running pull beats a third of this (2 s here); the console's sweeper (on each gateway heartbeat) releases it
# after this long.
STALE_AFTER_SECONDS = 10
ADMIN_USER = "fleet-admin"
# Nothing listens there: the web process must not need a Docker daemon.
NOWHERE = "unix:///nonexistent/docker.sock"
# Kept from the parent's environment; everything else the processes get is set here.
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "VIRTUAL_ENV", "SSL_CERT_FILE")


@dataclass
class Proc:
    """A long-running process of the fleet (an agent or the web), restartable with the same settings."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen | None = None
    log_offset: int = 0  # where this start's output begins in the log

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> None:
        if self.running():
            raise StackError(f"{self.name} is already running")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            log.write(f"--- fleet: starting {self.name}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                self.argv,
                cwd=REPO,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        """What this start of the process wrote so far."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self.log_offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (the agent and any pool processes) and reap it."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)
        self.popen.wait(timeout=30)

    def stop(self, timeout: float = 15) -> None:
        if self.popen is None:
            return
        terminate(self.popen.pid, timeout=timeout)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)


@dataclass
class Gateway:
    name: str
    state_dir: Path
    docker_host: str
    token: str = ""
    agent: Proc | None = None

    def api(self, timeout: int = 60) -> docker.APIClient:
        """The Docker Engine API of this gateway's own daemon."""
        return docker.APIClient(base_url=self.docker_host, version="auto", timeout=timeout)


@dataclass
class Fleet:
    root: Path
    db: postgres.PostgresInfo
    redis_url: str
    secret_key: str
    encryption_key: str
    admin_password: str
    gateways: dict[str, Gateway] = field(default_factory=dict)
    web: Proc | None = None
    web_url: str = ""

    # ------------------------------------------------------------------ environments

    def console_env(self, data_dir: str, **extra: str) -> dict[str, str]:
        """What every console process (the web, manage.py) runs with: the same database, broker and keys."""
        env = {key: os.environ[key] for key in _INHERITED if key in os.environ}
        env.update(
            {
                **self.db.django_env(),
                "DJANGO_SETTINGS_MODULE": "orchestrator.settings",
                "DJANGO_SECRET_KEY": self.secret_key,
                "FIELD_ENCRYPTION_KEY": self.encryption_key,
                "DATA_DIR": str(self.root / "data" / data_dir),
                "CELERY_BROKER_URL": self.redis_url,
                "GATEWAY_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
                "PULL_STALE_AFTER_SECONDS": str(STALE_AFTER_SECONDS),
                "PYTHONUNBUFFERED": "1",
                "DOCKER_HOST": NOWHERE,
                MARKER_ENV: str(self.root),
                OWNER_ENV: owner_mark(),
            }
        )
        env.update(extra)
        return env

    def manage(self, *args: str, timeout: float = 120, **extra: str) -> str:
        """Run ``manage.py ARGS`` against the fleet's database; return its output."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO,
            env=self.console_env("manage", **extra),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(
                f"manage.py {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
            )
        return result.stdout

    # ------------------------------------------------------------------ agents

    def agent_env(self, gateway: Gateway) -> dict[str, str]:
        """An agent's whole environment: the four variables of docs/agent-api.md, the tests' two intervals and
        an empty data folder of its own. No database, no key, no secret key of the console."""
        env = {key: os.environ[key] for key in _INHERITED if key in os.environ}
        data_dir = self.root / "data" / f"agent-{gateway.name}"
        data_dir.mkdir(parents=True, exist_ok=True)
        env.update(
            {
                "GATEWAY_TOKEN": gateway.token,
                "CONSOLE_URL": self.web_url,
                "CELERY_BROKER_URL": self.redis_url,
                "DOCKER_HOST": gateway.docker_host,
                "DATA_DIR": str(data_dir),
                "GATEWAY_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
                "PULL_STALE_AFTER_SECONDS": str(STALE_AFTER_SECONDS),
                "PYTHONUNBUFFERED": "1",
                MARKER_ENV: str(self.root),
                OWNER_ENV: owner_mark(),
            }
        )
        return env

    def agent_proc(self, gateway: Gateway) -> Proc:
        env = self.agent_env(gateway)
        return Proc(
            name=f"agent of {gateway.name}",
            argv=[sys.executable, "manage.py", "agent", "-l", "info"],
            env=env,
            log_path=self.root / "logs" / f"agent-{gateway.name}.log",
        )

    def start_agent(self, name: str) -> Proc:
        """Start the gateway's agent (again: a new process with the same token); wait until it consumes."""
        gateway = self.gateways[name]
        if gateway.agent is None:
            gateway.agent = self.agent_proc(gateway)
        gateway.agent.start()
        return gateway.agent

    def wait_agent_ready(self, name: str, timeout: float = 60) -> None:
        agent = self.gateways[name].agent
        assert agent is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not agent.running():
                raise StackError(f"{agent.name} exited at start:\n{agent.tail()}")
            if " ready." in agent.output():
                return
            time.sleep(0.1)
        raise StackError(f"{agent.name} was not ready in {timeout:.0f} s:\n{agent.tail()}")

    def kill_agent(self, name: str) -> float:
        """SIGKILL the agent's process group; return the monotonic time it was killed at."""
        agent = self.gateways[name].agent
        assert agent is not None and agent.running(), f"the agent of {name} is not running"
        agent.kill(signal.SIGKILL)
        return time.monotonic()

    # ------------------------------------------------------------------ the web

    def web_proc(self, port: int) -> Proc:
        # No Docker client in the web: its save-time check goes to the instance's gateway's agent.
        env = self.console_env("web")
        return Proc(
            name="web",
            argv=[
                sys.executable,
                "-m",
                "gunicorn",
                "orchestrator.wsgi",
                "-b",
                f"127.0.0.1:{port}",
                "-w",
                "1",
                "--threads",
                "8",
                "--timeout",
                "60",
                "--graceful-timeout",
                "5",
            ],
            env=env,
            log_path=self.root / "logs" / "web.log",
        )

    def start_web(self, timeout: float = 60) -> None:
        for _attempt in range(5):
            port = free_port()
            self.web = self.web_proc(port)
            self.web_url = f"http://127.0.0.1:{port}"
            self.web.start()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.web.running():
                with contextlib.suppress(requests.RequestException):
                    if requests.get(f"{self.web_url}/accounts/login/", timeout=2).status_code == 200:
                        return
                time.sleep(0.1)
            if "Address already in use" in self.web.output():
                self.web.stop()
                continue
            raise StackError(f"the web process did not answer in {timeout:.0f} s:\n{self.web.tail()}")
        raise StackError("the web process found no free port")

    def client(self) -> WebClient:
        """A logged-in session on the web process (the administrator)."""
        return WebClient.login(self.web_url, ADMIN_USER, self.admin_password)

    # ------------------------------------------------------------------ diagnostics and the end

    def logs(self, lines: int = 25) -> str:
        """The last lines of every agent's and the web's log, for failure messages."""
        parts = []
        for proc in [self.web, *(g.agent for g in self.gateways.values())]:
            if proc is not None:
                parts.append(f"--- {proc.name} ({proc.log_path}):\n{tail(proc.log_path, lines)}")
        return "\n".join(parts)

    def stop(self) -> None:
        """Stop the web and the agents, then the daemons (each waits for its containers), Redis, PostgreSQL."""
        errors: list[str] = []

        def stop_proc(proc: Proc) -> None:
            try:
                proc.stop()
            except Exception as exc:  # noqa: BLE001 - stop the rest all the same
                errors.append(f"{proc.name}: {exc}")

        def stop_daemon(gateway: Gateway) -> None:
            try:
                dockerd.stop(gateway.state_dir)
            except StackError as exc:
                errors.append(str(exc))
            else:  # vfs copies every layer: hundreds of MB per daemon; the logs stay
                shutil.rmtree(gateway.state_dir / "docker", ignore_errors=True)

        procs = [proc for proc in [self.web, *(g.agent for g in self.gateways.values())] if proc is not None]
        all_at_once(stop_proc, procs)
        all_at_once(stop_daemon, list(self.gateways.values()))
        try:
            redisd.stop(self.root, self.redis_url)
        except StackError as exc:
            errors.append(str(exc))
        try:
            postgres.destroy(self.db)
        except StackError as exc:
            errors.append(str(exc))
        for directory in [self.root, *(g.state_dir for g in self.gateways.values())]:
            for pid in stack_processes(directory):
                if not terminate_tree(pid):
                    errors.append(f"process {pid} of the fleet survived SIGKILL")
        if errors:
            raise StackError("stopping the fleet: " + "; ".join(errors))


@contextlib.contextmanager
def _owned():
    """Processes started by tests.stack inside this block carry this run as their owner."""
    before = os.environ.get(OWNER_ENV)
    os.environ[OWNER_ENV] = owner_mark()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(OWNER_ENV, None)
        else:
            os.environ[OWNER_ENV] = before


# ------------------------------------------------------------------ bring-up

_FIRST_START = r"""
import io, os, re
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
call_command("ensure_admin")
for name in os.environ["FLEET_GATEWAYS"].split():
    out = io.StringIO()
    call_command("gateway", "add", name, stdout=out)
    print(name + ": " + re.search(r"^gwt_\S+$", out.getvalue(), re.M)[0])
"""


def start_fleet(root: Path) -> Fleet:
    """Start the fleet in ``root``; on any failure everything started so far is stopped again."""
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    reap_orphans()
    timings: dict[str, float] = {}
    started = time.monotonic()
    gateways = {name: Gateway(name, root / f"gw-{name}", dockerd.docker_host(root / f"gw-{name}")) for name in GATEWAYS}
    docker_pids = {}
    fleet: Fleet | None = None
    try:
        with _owned():
            for gateway in gateways.values():  # dockerds boot while the database is made
                gateway.state_dir.mkdir(parents=True, exist_ok=True)
                docker_pids[gateway.name] = dockerd.spawn(gateway.state_dir)
            db = postgres.create(
                root, database="console", user="console", password=secrets.token_urlsafe(18), timeout=60
            )
            timings["postgres"] = time.monotonic() - started
            redis_url = redisd.create(root)
        fleet = Fleet(
            root=root,
            db=db,
            redis_url=redis_url,
            secret_key=secrets.token_urlsafe(50),
            encryption_key=Fernet.generate_key().decode(),
            admin_password=secrets.token_urlsafe(16),
            gateways=gateways,
        )
        # The console's first start in one process (each manage.py costs a Django start-up): migrate, the
        # administrator, and `manage.py gateway add` for each gateway, which prints its agent's token once.
        out = fleet.manage(
            "shell",
            "-c",
            _FIRST_START,
            DJANGO_SUPERUSER_USERNAME=ADMIN_USER,
            DJANGO_SUPERUSER_PASSWORD=fleet.admin_password,
            FLEET_GATEWAYS=" ".join(GATEWAYS),
        )
        for name in GATEWAYS:
            tokens = re.findall(rf"^{re.escape(name)}: (gwt_\S+)$", out, re.M)
            if len(tokens) != 1:
                raise StackError(f"manage.py gateway add {name} printed no token:\n{out}")
            gateways[name].token = tokens[0]
        timings["gateways"] = time.monotonic() - started
        for name, pid in docker_pids.items():
            dockerd.wait_ready(gateways[name].state_dir, pid, timeout=60)
        timings["dockerds"] = time.monotonic() - started
        fleet.start_web()
        for name in GATEWAYS:
            fleet.start_agent(name)
        for name in GATEWAYS:
            fleet.wait_agent_ready(name)
        timings["agents"] = time.monotonic() - started
        (root / "startup.txt").write_text("".join(f"{k} {v:.1f}\n" for k, v in timings.items()))
        return fleet
    except BaseException:
        if fleet is not None:
            with contextlib.suppress(Exception):
                fleet.stop()
        else:
            for gateway in gateways.values():
                with contextlib.suppress(Exception):
                    dockerd.stop(gateway.state_dir)
            with contextlib.suppress(Exception):
                postgres.destroy_root(postgres.cluster_root(root))
            with contextlib.suppress(Exception):
                for pid in stack_processes(root):
                    terminate_tree(pid)
        raise

"""A fleet beside the bench's stack: more sandboxed dockerds, a gateway and an agent for each.

``Fleet(bench, 3)`` starts three daemons of ``tests/stack/dockerd.py`` (each
with its own state dir, data-root and socket under the bench's work dir), adds
the gateways ``fleet-1`` .. ``fleet-3`` to the console (``add_gateway``, as
``manage.py gateway add`` does), and runs one ``manage.py agent`` per gateway
exactly as deployed: its token in ``GATEWAY_TOKEN_FILE``, its own
``DOCKER_HOST``, the Redis broker, and no ``-c`` (the agent's default
concurrency). All pull from the stack's one registry. :meth:`Fleet.close` stops
the agents and the daemons (and whatever the daemons left behind).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import docker

from tests.stack import dockerd
from tests.stack.images import clear_images
from tests.stack.procs import ServiceSpec, StackError, read_pid, spawn, stack_processes, stop_service, terminate_tree

from .harness import DOCKER_CLI, REPO, Bench, BenchError


def run_all(calls: list[Callable[[], object]]) -> list[object]:
    """Run the calls in threads at once; their results in order; the first error raised once all are done."""
    results: list[object] = [None] * len(calls)
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            results[i] = calls[i]()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


class Member:
    """One gateway of the fleet: its daemon and its agent."""

    def __init__(self, fleet_dir: Path, number: int) -> None:
        self.name = f"fleet-{number}"
        self.state_dir = fleet_dir / f"d{number}"
        self.docker_host = dockerd.docker_host(self.state_dir)
        self.service = f"agent-{self.name}"
        self.log = fleet_dir / f"{self.service}.log"
        self._api: docker.APIClient | None = None

    @property
    def api(self) -> docker.APIClient:
        if self._api is None:
            self._api = docker.APIClient(base_url=self.docker_host, version="auto", timeout=300)
        return self._api

    def close_api(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None


class Fleet:
    """``size`` gateways with their own daemon and agent; use as a context manager."""

    def __init__(self, bench: Bench, size: int, log=print) -> None:
        self.bench = bench
        self.log = log
        self.dir = bench.work_dir / "fleet"
        self.members = [Member(self.dir, n + 1) for n in range(size)]

    def __enter__(self) -> Fleet:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        started = time.monotonic()
        for member in self.members:
            member.state_dir.mkdir(parents=True, exist_ok=True)
        pids = [dockerd.spawn(member.state_dir) for member in self.members]  # they boot side by side
        for member, pid in zip(self.members, pids, strict=True):
            dockerd.wait_ready(member.state_dir, pid, timeout=60)
        for member in self.members:
            self._spawn_agent(member)
        for member in self.members:
            self._wait_agent(member)
        self.log(
            f"  fleet of {len(self.members)} gateways (dockerd + agent each) up in {time.monotonic() - started:.1f} s"
        )

    def _spawn_agent(self, member: Member) -> None:
        from orchestrator.gateways.actions import add_gateway, rotate_token
        from orchestrator.models import Gateway

        if Gateway.objects.filter(name=member.name).exists():
            token = rotate_token(member.name)
        else:
            _, token = add_gateway(member.name)
        token_file = self.dir / f"{member.name}-token"
        token_file.write_text(token)
        token_file.chmod(0o600)
        env = {
            **self.bench.env,
            "PATH": self.bench.env.get("PATH") or "/usr/bin:/bin",
            "LOG_LEVEL": "INFO",
            "DOCKER_HOST": member.docker_host,
            "GATEWAY_TOKEN_FILE": str(token_file),
            "CONSOLE_URL": self.bench.base_url,
        }
        spec = ServiceSpec(
            name=member.service,
            # As `make run` starts an agent: no -c, no --pool (the agent's defaults).
            argv=[sys.executable, "manage.py", "agent", "-l", "info", "--hostname", f"bench@{member.name}"],
            log=str(member.log),
            pid_file=str(self.bench.state_dir / "pids" / f"{member.service}.pid"),
            cwd=str(REPO),
            env=env,
        )
        spawn(spec, self.bench.state_dir)

    def _wait_agent(self, member: Member) -> None:
        from tests.stack.procs import wait_for

        def ready() -> bool:
            return " ready." in member.log.read_text(errors="replace")

        wait_for(ready, what=f"the agent of {member.name}", log=member.log, timeout=90)

    def agent_pid(self, member: Member) -> int:
        pid = read_pid(self.bench.state_dir / "pids" / f"{member.service}.pid", self.bench.state_dir)
        if pid is None:
            raise BenchError(f"the agent of {member.name} is not running; see {member.log}")
        return pid

    def close(self) -> None:
        for member in self.members:
            try:
                stop_service(self.bench.state_dir, member.service, timeout=20)
            except StackError as exc:
                self.log(f"warning: {exc}")
        for member in self.members:
            member.close_api()
            if not member.state_dir.exists():
                continue
            try:
                dockerd.stop(member.state_dir)
            except StackError as exc:
                self.log(f"warning: {exc}")
            for pid in stack_processes(member.state_dir):
                terminate_tree(pid)

    # ------------------------------------------------------------ daemons and CLI

    def clear(self) -> None:
        """Every container and image off every daemon of the fleet (in parallel); the next pulls start cold."""

        def clear_one(member: Member) -> None:
            for container in member.api.containers(all=True):
                member.api.remove_container(container["Id"], force=True)
            clear_images(member.api)

        run_all([lambda m=member: clear_one(m) for member in self.members])
        subprocess.run(["sync"], check=False)
        time.sleep(0.5)

    def cli_pull(self, member: Member, reference: str) -> float:
        """``docker pull reference`` against ``member``'s daemon (the bench's logged-in CLI config)."""
        env = {**self.bench.cli_env(), "DOCKER_HOST": member.docker_host}
        started = time.perf_counter()
        done = subprocess.run(
            [DOCKER_CLI, "pull", reference],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=900,
        )
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise BenchError(f"docker pull {reference} on {member.name} failed: {done.stderr.strip()}")
        return elapsed

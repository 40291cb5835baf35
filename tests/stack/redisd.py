"""The test stack's Redis: ``redis-server`` on a free loopback port, no persistence."""

from __future__ import annotations

import shutil
from pathlib import Path

import redis

from .procs import (
    DEFAULT_TIMEOUT,
    ServiceSpec,
    StackError,
    free_port,
    is_alive,
    read_pid,
    spawn,
    stop_service,
    tail,
    wait_for,
)

NAME = "redis"
_PORT_ATTEMPTS = 5


def server_pid(url: str) -> int | None:
    """The ``process_id`` the Redis at ``url`` reports, or None if it does not answer."""
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        return int(client.info("server")["process_id"])
    except (redis.RedisError, OSError, KeyError, ValueError):
        return None
    finally:
        client.close()


def _url(port: int) -> str:
    return f"redis://127.0.0.1:{port}/0"


def _spawn_and_wait(state_dir: Path, url: str, timeout: float) -> None:
    if read_pid(state_dir / "pids" / f"{NAME}.pid", state_dir) is not None:
        raise StackError(f"redis of {state_dir} is already running")
    spec = ServiceSpec.load(state_dir, NAME)
    pid = spawn(spec, state_dir)

    def ready() -> bool:
        if not is_alive(pid):
            raise StackError(f"redis-server exited during start; see {spec.log}:\n{tail(spec.log)}")
        return server_pid(url) == pid

    wait_for(ready, what=f"redis at {url}", log=spec.log, timeout=timeout)


def create(state_dir: Path, *, timeout: float = DEFAULT_TIMEOUT) -> str:
    """Start redis-server on a free loopback port (retrying on a port race); return its URL."""
    server = shutil.which("redis-server")
    if server is None:
        raise StackError("redis-server not found: run `bash tests/stack/install.sh`")
    data = state_dir / "redis"
    data.mkdir(parents=True, exist_ok=True)
    log = state_dir / "redis.log"
    last_error: StackError | None = None
    for _attempt in range(_PORT_ATTEMPTS):
        port = free_port()
        ServiceSpec(
            name=NAME,
            argv=[
                server,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(data),
                "--daemonize",
                "no",
                "--logfile",
                "",
                # keep argv/environ intact: the stop sweep finds processes by environment
                "--set-proc-title",
                "no",
            ],
            log=str(log),
            pid_file=str(state_dir / "pids" / f"{NAME}.pid"),
            cwd=str(data),
        ).save(state_dir)
        try:
            _spawn_and_wait(state_dir, _url(port), timeout)
        except StackError as exc:
            stop_service(state_dir, NAME)
            last_error = exc
            if "Address already in use" in tail(log, 5):
                continue
            raise
        return _url(port)
    raise StackError(f"redis: no free port after {_PORT_ATTEMPTS} attempts: {last_error}")


def start(state_dir: Path, url: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Start redis again with its recorded command line (same port, empty data)."""
    _spawn_and_wait(state_dir, url, timeout)


def stop(state_dir: Path, url: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Stop redis and wait until its port no longer answers."""
    stop_service(state_dir, NAME, timeout=timeout)
    wait_for(
        lambda: server_pid(url) is None, what=f"redis at {url} to stop", log=state_dir / "redis.log", timeout=timeout
    )

"""The sandboxed Docker daemon of the test stack (see DESIGN.md, "The real test stack").

``dockerd`` runs with vfs storage, no iptables, no bridge and its own data-root,
exec-root, socket, pid file and (empty) daemon.json, so it never touches a
system Docker installation and containers can only use ``--network none`` or
``host``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import docker

from .procs import (
    DEFAULT_TIMEOUT,
    ServiceSpec,
    StackError,
    is_alive,
    read_pid,
    stack_processes,
    tail,
    terminate,
    terminate_tree,
    wait_for,
)
from .procs import spawn as spawn_process

NAME = "dockerd"

# Unix socket paths are limited to 108 bytes; containerd puts the longest one at
# <exec-root>/containerd/containerd.sock.ttrpc.
_MAX_SOCKET = 100


def run_dir(state_dir: Path) -> Path:
    """Where the daemon's sockets live: ``state_dir`` itself, or a short /tmp dir if that is too long."""
    if len(str(state_dir / "exec" / "containerd" / "containerd.sock.ttrpc")) <= _MAX_SOCKET:
        return state_dir
    digest = hashlib.sha256(str(state_dir).encode()).hexdigest()[:12]
    return Path("/tmp") / f"tests-stack-{digest}"


def socket_path(state_dir: Path) -> Path:
    """The daemon's API socket."""
    return run_dir(state_dir) / "docker.sock"


def docker_host(state_dir: Path) -> str:
    """``DOCKER_HOST`` value for the sandboxed daemon."""
    return f"unix://{socket_path(state_dir)}"


def log_path(state_dir: Path) -> Path:
    """The daemon's log file."""
    return state_dir / "dockerd.log"


def _spec(state_dir: Path) -> ServiceSpec:
    rdir = run_dir(state_dir)
    config = state_dir / "daemon.json"
    if not config.exists():
        # Our own (empty) config so a host /etc/docker/daemon.json cannot leak in.
        config.write_text(json.dumps({}) + "\n")
    dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
    return ServiceSpec(
        name=NAME,
        argv=[
            dockerd,
            f"--config-file={config}",
            "--storage-driver=vfs",
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
            f"--data-root={state_dir / 'docker'}",
            f"--exec-root={rdir / 'exec'}",
            "-H",
            f"unix://{rdir / 'docker.sock'}",
            f"--pidfile={state_dir / 'docker.pid'}",
        ],
        log=str(log_path(state_dir)),
        pid_file=str(state_dir / "pids" / f"{NAME}.pid"),
        cwd=str(state_dir),
    )


def ping(host: str, timeout: float = 2.0) -> bool:
    """True if the daemon at ``host`` answers ``/_ping``."""
    client = docker.APIClient(base_url=host, timeout=timeout)
    try:
        return bool(client.ping())
    finally:
        client.close()


def _down(host: str) -> bool:
    try:
        ping(host, timeout=1.0)
    except Exception:  # noqa: BLE001 - any failure to reach it means down
        return True
    return False


def spawn(state_dir: Path) -> int:
    """Start the daemon (keeping any existing data) without waiting; return its pid."""
    if len(str(socket_path(state_dir))) > _MAX_SOCKET:
        raise StackError(f"socket path too long: {socket_path(state_dir)}")
    if read_pid(state_dir / "pids" / f"{NAME}.pid", state_dir) is not None:
        raise StackError(f"dockerd of {state_dir} is already running")
    run_dir(state_dir).mkdir(parents=True, exist_ok=True)
    socket_path(state_dir).unlink(missing_ok=True)  # stale after a kill
    return spawn_process(_spec(state_dir), state_dir)


def wait_ready(state_dir: Path, pid: int, *, timeout: float = DEFAULT_TIMEOUT) -> str:
    """Wait until the daemon started as ``pid`` answers ``/_ping``; return DOCKER_HOST."""
    host = docker_host(state_dir)
    log = log_path(state_dir)

    def ready() -> bool:
        if not is_alive(pid):
            raise StackError(f"dockerd exited during start; see {log}:\n{tail(log)}")
        return ping(host)

    wait_for(ready, what=f"dockerd at {host}", log=log, timeout=timeout)
    return host


def start(state_dir: Path, *, timeout: float = DEFAULT_TIMEOUT) -> str:
    """Start the daemon (same paths, data kept) and wait until it answers; return DOCKER_HOST."""
    return wait_ready(state_dir, spawn(state_dir), timeout=timeout)


def _containerd_pid(state_dir: Path) -> int | None:
    pid_file = run_dir(state_dir) / "exec" / "containerd" / "containerd.pid"
    return read_pid(pid_file, state_dir)


def _unmount_under(*roots: Path) -> None:
    """Lazily unmount ``roots`` and anything mounted below them (deepest first)."""
    exact = {str(root) for root in roots}
    prefixes = tuple(f"{root}/" for root in roots)
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return
    targets = {line.split()[4] for line in lines if len(line.split()) > 4}
    # dockerd bind-mounts its data-root onto itself; a killed daemon leaves that behind
    mine = [t for t in targets if t in exact or t.startswith(prefixes)]
    for target in sorted(mine, key=len, reverse=True):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(["umount", "-l", target], capture_output=True, timeout=10, check=False)


def stop(state_dir: Path, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Stop the daemon, its containerd and any container shims; wait until the socket is dead.

    A graceful stop stops running containers first; one whose PID 1 ignores
    SIGTERM (busybox ``sleep``) holds it up for its StopTimeout (10 s unless the
    container was created with ``stop_timeout``). After ``timeout`` s, SIGKILL.
    """
    host = docker_host(state_dir)
    pid_file = state_dir / "pids" / f"{NAME}.pid"
    pid = read_pid(pid_file, state_dir)
    if pid is not None and not terminate(pid, timeout=timeout):
        raise StackError(f"dockerd (pid {pid}) survived SIGKILL; see {log_path(state_dir)}")
    pid_file.unlink(missing_ok=True)
    # dockerd normally stops its managed containerd; a killed dockerd leaves it behind.
    cpid = _containerd_pid(state_dir)
    if cpid is not None:
        terminate(cpid, timeout=10)
    # container shims outlive both; they carry our marker and name our exec-root.
    exec_root = str(run_dir(state_dir) / "exec")
    for other in stack_processes(state_dir):
        try:
            cmdline = Path(f"/proc/{other}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if exec_root in cmdline or "containerd-shim" in cmdline or "docker-proxy" in cmdline:
            terminate_tree(other)  # a shim's children are the container's processes
    _unmount_under(run_dir(state_dir) / "exec", state_dir / "docker")
    # A dead containerd can linger as a zombie until init reaps it; a new dockerd
    # finding its pid file would try to reuse it and time out. Same for dockerd's own.
    (run_dir(state_dir) / "exec" / "containerd" / "containerd.pid").unlink(missing_ok=True)
    (state_dir / "docker.pid").unlink(missing_ok=True)
    wait_for(lambda: _down(host), what=f"dockerd at {host} to stop", log=log_path(state_dir), timeout=timeout)
    socket_path(state_dir).unlink(missing_ok=True)

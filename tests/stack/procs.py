"""Process plumbing for the test stack: spawning, pid files, bounded waits, ports.

Every process the stack starts:

* runs in its own session (``start_new_session=True``), so its whole process
  group can be signalled;
* has its pid written to ``<state_dir>/pids/<name>.pid`` and its command line
  saved to ``<state_dir>/services/<name>.json`` so it can be restarted
  identically;
* carries ``TESTS_STACK_DIR=<state_dir>`` in its environment. Children inherit
  it (dockerd's containerd and its shims too), which lets ``stop_stack`` find and
  end exactly the processes this stack started, one pid at a time, even those
  that left the process group.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

#: Environment variable that marks every process started for a stack.
MARKER_ENV = "TESTS_STACK_DIR"

#: Default bound for "wait until up/down".
DEFAULT_TIMEOUT = 30.0

# Popen objects of the processes started by this Python process, so that they
# can be reaped (a dead but unreaped child is a zombie and still "exists").
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class StackError(RuntimeError):
    """A stack service could not be started, stopped or reached."""


@dataclass
class ServiceSpec:
    """How to (re)start one long-running process of the stack."""

    name: str
    argv: list[str]
    log: str
    pid_file: str
    cwd: str | None = None
    env: dict[str, str] = field(default_factory=dict)

    def save(self, state_dir: Path) -> None:
        """Write the spec to ``state_dir/services/<name>.json``."""
        path = state_dir / "services" / f"{self.name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, state_dir: Path, name: str) -> ServiceSpec:
        """Read the spec saved by :meth:`save`."""
        path = state_dir / "services" / f"{name}.json"
        if not path.exists():
            raise StackError(f"no service {name!r} recorded in {state_dir}")
        return cls(**json.loads(path.read_text()))


def tail(path: str | Path, lines: int = 15) -> str:
    """The last lines of a log file, for error messages."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (callers must retry on a race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True if something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _stat_state(pid: int) -> str | None:
    """The one-letter state from /proc/<pid>/stat, or None if there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) S ..." - comm may contain spaces and parentheses.
    return raw.rsplit(")", 1)[-1].split()[0]


def start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot) from /proc, or None if it is gone.

    Recorded next to the pid so a reused pid is never mistaken for ours.
    """
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw.rsplit(")", 1)[-1].split()[19]


def is_alive(pid: int) -> bool:
    """True if the process exists and is not a zombie (reaping our own children)."""
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        _CHILDREN.pop(pid, None)
        return False
    state = _stat_state(pid)
    return state is not None and state not in ("Z", "X")


def process_marker(pid: int) -> str | None:
    """The value of ``TESTS_STACK_DIR`` in a process's environment, if any."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    prefix = f"{MARKER_ENV}=".encode()
    for item in environ.split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix) :].decode(errors="replace")
    return None


def stack_processes(state_dir: Path) -> list[int]:
    """Pids of all live processes marked as belonging to the stack in ``state_dir``."""
    mine = {os.getpid(), os.getppid()}
    wanted = str(state_dir)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid in mine or not is_alive(pid):
            continue
        if process_marker(pid) == wanted:
            found.append(pid)
    return found


def wait_for(
    condition: Callable[[], bool],
    *,
    what: str,
    log: str | Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 0.1,
) -> None:
    """Poll ``condition`` until it is true; raise StackError naming ``log`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        last = None
        try:
            if condition():
                return
        except StackError:
            raise
        except Exception as exc:  # noqa: BLE001 - a probe failing just means "not yet"
            last = exc
        if time.monotonic() >= deadline:
            if last is not None:
                what = f"{what} (last probe error: {last!r})"
            where = f"; see {log}:\n{tail(log)}" if log else ""
            raise StackError(f"timed out after {timeout:.0f}s waiting for {what}{where}")
        time.sleep(interval)


def spawn(spec: ServiceSpec, state_dir: Path) -> int:
    """Start ``spec`` in a new session, logging to ``spec.log``; record and return its pid."""
    spec.save(state_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env.update(spec.env)
    env[MARKER_ENV] = str(state_dir)
    Path(spec.log).parent.mkdir(parents=True, exist_ok=True)
    with open(spec.log, "ab") as log:
        log.write(f"--- tests.stack: starting {' '.join(spec.argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            spec.argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=spec.cwd,
            env=env,
            start_new_session=True,
        )
    _CHILDREN[proc.pid] = proc
    write_pid(Path(spec.pid_file), proc.pid)
    return proc.pid


def write_pid(pid_file: Path, pid: int) -> None:
    """Record ``pid`` and its start time in ``pid_file``."""
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{pid} {start_time(pid) or ''}\n")


def read_pid(pid_file: str | Path, state_dir: Path) -> int | None:
    """The live pid recorded in ``pid_file`` if it is still the process this stack started.

    Identity is the start time recorded with the pid (see :func:`write_pid`); for
    pid files written by others (dockerd's containerd.pid) the environment marker.
    """
    try:
        fields = Path(pid_file).read_text().split()
        pid = int(fields[0])
    except (OSError, ValueError, IndexError):
        return None
    if not is_alive(pid):
        return None
    if len(fields) > 1:
        return pid if start_time(pid) == fields[1] else None
    return pid if process_marker(pid) == str(state_dir) else None


def _signal(pid: int, sig: int, group: bool) -> None:
    """Send ``sig`` to ``pid``, or to the process group ``pid`` leads if ``group``."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def _leads_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except OSError:
        return False


def terminate(pid: int, *, timeout: float = DEFAULT_TIMEOUT, group: bool = True) -> bool:
    """SIGTERM ``pid`` (its process group if ``group`` and it leads one), SIGKILL after ``timeout``.

    Returns True if the process is gone. Never waits longer than ``timeout + 5`` s.
    """
    if not is_alive(pid):
        _reap(pid)
        return True
    group = group and _leads_group(pid)
    _signal(pid, signal.SIGTERM, group)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid):
            break
        time.sleep(0.05)
    else:
        _signal(pid, signal.SIGKILL, group)
        deadline = time.monotonic() + 5
        while is_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    if group:  # stragglers left in the group get no grace period
        _signal(pid, signal.SIGKILL, True)
    _reap(pid)
    return not is_alive(pid)


def _reap(pid: int) -> None:
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=1)


def descendants(pid: int) -> list[int]:
    """Pids of all live descendants of ``pid`` (children first found, deepest last)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[-1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    queue = list(children.get(pid, []))
    while queue:
        child = queue.pop(0)
        found.append(child)
        queue.extend(children.get(child, []))
    return [p for p in found if is_alive(p)]


def terminate_tree(pid: int, *, timeout: float = 5.0) -> bool:
    """Terminate ``pid`` and then SIGKILL whatever it had started (e.g. a shim's container).

    The descendants are listed before ``pid`` goes, while they can still be
    told apart from unrelated processes by their parent.
    """
    tree = descendants(pid)
    gone = terminate(pid, timeout=timeout)
    for child in reversed(tree):
        _signal(child, signal.SIGKILL, False)
    deadline = time.monotonic() + 5
    while any(is_alive(child) for child in tree) and time.monotonic() < deadline:
        time.sleep(0.05)
    return gone and not any(is_alive(child) for child in tree)


def stop_service(state_dir: Path, name: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Stop the process recorded for service ``name`` and remove its pid file."""
    pid_file = state_dir / "pids" / f"{name}.pid"
    pid = read_pid(pid_file, state_dir)
    if pid is not None and not terminate(pid, timeout=timeout):
        raise StackError(f"{name} (pid {pid}) did not exit after SIGKILL")
    pid_file.unlink(missing_ok=True)


def run(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    input_text: str | None = None,
    timeout: float = 120.0,
    cwd: Path | None = None,
) -> str:
    """Run a short command; raise StackError with its output if it fails."""
    try:
        result = subprocess.run(
            argv,
            input=input_text,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            cwd=cwd,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise StackError(f"{argv[0]} timed out after {timeout:.0f}s: {' '.join(argv)}") from exc
    if result.returncode != 0:
        raise StackError(
            f"command failed ({result.returncode}): {' '.join(argv)}\n{result.stdout}{result.stderr}".strip()
        )
    return result.stdout

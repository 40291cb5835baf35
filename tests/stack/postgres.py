"""A throw-away PostgreSQL cluster for the tests (Debian's ``postgresql`` package).

``create(folder, database=..., user=..., password=...)`` runs ``initdb`` and
``pg_ctl start`` from Debian's ``/usr/lib/postgresql/<version>/bin`` (the newest
version installed; ``/usr/local/bin`` copies are not relied on), as the
``postgres`` user when run as root (the server refuses to run as root). The
server listens on 127.0.0.1 on a free port, its Unix socket is in the cluster's
own folder, and a database plus a login role with a password are made for the
tests. ``destroy(info)`` stops it and deletes the cluster.

Where the cluster lives: ``<folder>/tests-stack-pg`` when the ``postgres`` user
can reach ``folder``. pytest's own temporary folders are 0700 and root's (and
pytest resets them to that at every start), so then the cluster gets a private
``/tmp/tests-stack-pg-<hash of folder>`` (0700, the postgres user's), linked
from ``<folder>/postgres``, the way dockerd.py moves a socket path that is too
long. Nothing outside the cluster's folder changes mode or owner.

A run that was killed leaves its server running. Every server carries its
owner (pid and start time of the process that made it) on its command line, as
the placeholder setting ``tests_stack.owner``, and its folder has it in a file;
``create`` first stops every server of a folder named ``tests-stack-pg`` whose
owner is gone (even when that folder was deleted under it), and deletes that
folder. A folder given again (two runs in a row with the same
folder) is stopped and made anew. A port taken meanwhile is retried with
another one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .procs import DEFAULT_TIMEOUT, StackError, free_port, is_alive, start_time, tail

#: Every cluster folder's name contains this; the orphan sweep looks for nothing else.
MARK = "tests-stack-pg"
OS_USER = "postgres"
INFO_FILE = "cluster.json"
OWNER_FILE = "owner"
OWNER_SETTING = "tests_stack.owner"
LINK_NAME = "postgres"
ADMIN = "tests_admin"
_PORT_ATTEMPTS = 5
# "<socket dir>/.s.PGSQL.65535.lock" must stay below the 107 bytes of sun_path.
_MAX_SOCKET_DIR = 80
# Throw-away data: no fsync; enough connections for a web process and several agents of 8 threads.
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "max_connections": "200",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "log_min_messages": "warning",
}


@dataclass
class PostgresInfo:
    """A running cluster: where it is and how to log in to its database."""

    root: Path
    port: int
    database: str
    user: str
    password: str
    host: str = "127.0.0.1"
    bin_dir: str = ""
    version: str = ""
    #: The folder the cluster was made for (it links to ``root`` when that is elsewhere).
    folder: str = ""

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def django_env(self) -> dict[str, str]:
        """The console's settings for this database (orchestrator/settings.py)."""
        return {
            "DATABASE_ENGINE": "postgresql",
            "DATABASE_HOST": self.host,
            "DATABASE_PORT": str(self.port),
            "DATABASE_NAME": self.database,
            "DATABASE_USER": self.user,
            "DATABASE_PASSWORD": self.password,
        }

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data["root"] = str(self.root)
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PostgresInfo:
        data = json.loads(text)
        data["root"] = Path(data["root"])
        return cls(**data)


# ------------------------------------------------------------------ binaries and the OS user


def _version_key(bin_dir: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", bin_dir.parent.name)) or (0,)


def bin_dir() -> Path:
    """Debian's newest ``/usr/lib/postgresql/<version>/bin`` that has initdb, pg_ctl and postgres."""
    found = [
        path
        for path in Path("/usr/lib/postgresql").glob("*/bin")
        if all((path / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres", "psql"))
    ]
    if not found:
        raise StackError(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin): run `bash tests/stack/install.sh`"
        )
    return max(found, key=_version_key)


def _as_server_user() -> dict:
    """Popen arguments that drop to the postgres user when we are root (the server refuses root)."""
    if os.geteuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam(OS_USER)
    except KeyError:
        raise StackError(f"there is no {OS_USER!r} user: is Debian's postgresql package installed?") from None
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _argv(*parts: object) -> list[str]:
    return [str(part) for part in parts]


def _run(argv: list[str], *, env: dict[str, str] | None = None, timeout: float = 60, cwd: Path | None = None) -> str:
    """Run a PostgreSQL tool as the server's user; raise StackError with its output on failure."""
    full_env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    full_env.update({"LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"})
    full_env.update(env or {})
    try:
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
            check=False,
            cwd=cwd or "/",
            stdin=subprocess.DEVNULL,
            **_as_server_user(),
        )
    except subprocess.TimeoutExpired as exc:
        raise StackError(f"{Path(argv[0]).name} timed out after {timeout:.0f}s: {' '.join(argv)}") from exc
    if result.returncode != 0:
        raise StackError(f"command failed ({result.returncode}): {' '.join(argv)}\n{result.stdout}{result.stderr}")
    return result.stdout


def _server_user_can_use(folder: Path) -> bool:
    """True if the postgres user can enter ``folder`` (mode bits, ACLs and all: it is asked); root makes the rest."""
    if os.geteuid() != 0:
        return os.access(folder, os.X_OK)
    try:
        _run(["/usr/bin/test", "-x", str(folder)], timeout=10)
    except StackError:
        return False
    return True


def _chown_to_server_user(path: Path) -> None:
    user = _as_server_user()
    if user:
        os.chown(path, user["user"], user["group"])


# ------------------------------------------------------------------ where a cluster lives


def _fallback_root(folder: Path) -> Path:
    digest = hashlib.sha256(str(folder).encode()).hexdigest()[:12]
    return Path("/tmp") / f"{MARK}-{digest}"


def cluster_root(folder: Path) -> Path:
    """The cluster folder for ``folder``: inside it if the postgres user can reach it, else a private /tmp one."""
    folder = Path(folder).resolve()
    inside = folder / MARK
    if len(str(inside / "socket")) <= _MAX_SOCKET_DIR and _server_user_can_use(folder):
        return inside
    return _fallback_root(folder)


def _recorded_root(folder: Path) -> Path | None:
    """The cluster a previous ``create(folder)`` made, if its record is still there."""
    folder = Path(folder).resolve()
    for candidate in (folder / MARK, folder / LINK_NAME, _fallback_root(folder)):
        if (candidate / INFO_FILE).exists() or (candidate / "data").exists():
            return candidate.resolve()
    return None


# ------------------------------------------------------------------ owners and orphans


def _owner() -> tuple[int, str]:
    pid = os.getpid()
    return pid, start_time(pid) or ""


def _alive(pid: int, started: str) -> bool:
    return is_alive(pid) and (not started or start_time(pid) == started)


def _owner_alive(root: Path, argv: list[str] | None = None) -> bool:
    """Is the process that made the cluster still there? Read from the server's command line (its
    ``tests_stack.owner`` setting), else from the cluster's owner file; neither: it is gone."""
    for arg in argv or []:
        if arg.startswith(f"{OWNER_SETTING}="):
            pid, _, started = arg.partition("=")[2].partition("-")
            return pid.isdigit() and _alive(int(pid), started)
    try:
        fields = (root / OWNER_FILE).read_text().split()
        pid = int(fields[0])
    except (OSError, ValueError, IndexError):
        return False
    return _alive(pid, fields[1] if len(fields) > 1 else "")


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _postmasters() -> dict[int, tuple[Path, list[str]]]:
    """Live postmasters of tests-stack clusters: pid -> (data dir from their ``-D`` argument, argv)."""
    found: dict[int, tuple[Path, list[str]]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        argv = _cmdline(int(entry.name))
        if not argv or Path(argv[0]).name not in ("postgres", "postmaster") or "-D" not in argv:
            continue
        index = argv.index("-D") + 1
        if index < len(argv) and MARK in argv[index] and is_alive(int(entry.name)):
            found[int(entry.name)] = (Path(argv[index]), argv)
    return found


def _kill_postmaster(pid: int, timeout: float = 10) -> None:
    """Immediate shutdown (SIGQUIT), then SIGKILL; the server's children end with it."""
    for sig, wait in ((signal.SIGQUIT, timeout), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while is_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not is_alive(pid):
            return
    raise StackError(f"postgres (pid {pid}) survived SIGKILL")


def reap_orphans() -> list[Path]:
    """Stop the servers of clusters whose owner process is gone (a killed run) and delete their folders.

    A cluster whose folder vanished (pytest deletes old temporary folders) has
    no owner left either. Returns the data dirs of the servers stopped.
    """
    reaped = []
    for pid, (data_dir, argv) in _postmasters().items():
        root = data_dir.parent
        if _owner_alive(root, argv):
            continue
        _kill_postmaster(pid)
        reaped.append(data_dir)
        _remove_root(root)
    return reaped


def _remove_root(root: Path) -> None:
    if MARK in root.name and root.exists():
        shutil.rmtree(root, ignore_errors=True)


# ------------------------------------------------------------------ lifecycle


def _postmaster_pid(info: PostgresInfo) -> int | None:
    """The live postmaster of this cluster, from postmaster.pid, checked against its command line."""
    try:
        pid = int((info.data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        pid = None
    if pid is not None and is_alive(pid):
        argv = _cmdline(pid)
        if "-D" in argv and Path(argv[argv.index("-D") + 1]).resolve() == info.data_dir.resolve():
            return pid
    for other, (data_dir, _args) in _postmasters().items():  # postmaster.pid lost, server still up
        if data_dir.resolve() == info.data_dir.resolve():
            return other
    return None


def _server_options(info: PostgresInfo) -> str:
    pid, started = _owner()
    settings = {
        **SERVER_SETTINGS,
        "port": str(info.port),
        "unix_socket_directories": str(info.socket_dir),
        # A placeholder setting the server ignores: its owner, on its command line for the orphan sweep.
        OWNER_SETTING: f"{pid}-{started}",
    }
    return " ".join(f"-c {key}={value}" for key, value in settings.items())


def _start_server(info: PostgresInfo, timeout: float) -> None:
    tools = Path(info.bin_dir)
    argv = ["start", "-D", info.data_dir, "-l", info.log, "-w", "-t", int(timeout), "-o", _server_options(info)]
    _run(_argv(tools / "pg_ctl", *argv), timeout=timeout + 10)


def _psql(info: PostgresInfo, sql: str, *, database: str = "postgres") -> str:
    tools = Path(info.bin_dir)
    connect = ["-h", info.socket_dir, "-p", info.port, "-U", ADMIN, "-d", database]
    return _run(_argv(tools / "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", *connect, "-c", sql))


def _check_login(info: PostgresInfo) -> None:
    """The tests' role logs in over TCP with its password (what the console does)."""
    tools = Path(info.bin_dir)
    connect = ["-h", info.host, "-p", info.port, "-U", info.user, "-d", info.database]
    _run(
        _argv(tools / "psql", "-X", "-q", *connect, "-c", "SELECT 1"),
        env={"PGPASSWORD": info.password, "PGCONNECT_TIMEOUT": "5"},
    )


def _identifier(value: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", value):
        raise StackError(f"{value!r} is not a plain lowercase SQL identifier")
    return value


def create(
    folder: Path,
    *,
    database: str = "orchestrator",
    user: str = "orchestrator",
    password: str,
    timeout: float = DEFAULT_TIMEOUT,
) -> PostgresInfo:
    """Make and start a cluster for ``folder`` with ``database`` owned by ``user`` (logging in with ``password``)."""
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    tools = bin_dir()
    reap_orphans()
    previous = _recorded_root(folder)
    if previous is not None:
        destroy_root(previous)
    (folder / LINK_NAME).unlink(missing_ok=True)
    root = cluster_root(folder)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(mode=0o700)
    owner_pid, owner_started = _owner()
    (root / OWNER_FILE).write_text(f"{owner_pid} {owner_started}\n")
    info = PostgresInfo(
        root=root,
        port=0,
        database=_identifier(database),
        user=_identifier(user),
        password=password,
        bin_dir=str(tools),
        version=tools.parent.name,
        folder=str(folder),
    )
    if "'" in password or "\\" in password:
        raise StackError("the password must not contain quotes or backslashes")
    for path in (root, info.socket_dir):
        path.mkdir(mode=0o700, exist_ok=True)
        _chown_to_server_user(path)
    if root.parent != folder:
        (folder / LINK_NAME).symlink_to(root)
    try:
        pwfile = root / "admin-password"
        pwfile.write_text(password + "\n")
        pwfile.chmod(0o600)
        _chown_to_server_user(pwfile)
        # The socket (in a folder only the postgres user enters) trusts; TCP wants the password.
        auth = ["--auth-local=trust", "--auth-host=scram-sha-256"]
        options = ["-E", "UTF8", "--no-locale", "--no-sync"]
        _run(
            _argv(tools / "initdb", "-D", info.data_dir, "-U", ADMIN, f"--pwfile={pwfile}", *auth, *options),
            timeout=120,
        )
        pwfile.unlink()
        last_error: StackError | None = None
        for _attempt in range(_PORT_ATTEMPTS):
            info.port = free_port()
            try:
                _start_server(info, timeout)
            except StackError as exc:
                last_error = exc
                if "could not bind" in tail(info.log, 20) or "already in use" in tail(info.log, 20):
                    continue  # lost the race for the port: another one
                raise StackError(f"{exc}\n{info.log}:\n{tail(info.log, 20)}") from None
            break
        else:
            raise StackError(f"postgres: no free port after {_PORT_ATTEMPTS} attempts: {last_error}")
        _psql(info, f"CREATE ROLE {info.user} LOGIN PASSWORD '{password}'")
        _psql(info, f"CREATE DATABASE {info.database} OWNER {info.user}")
        _check_login(info)
        (root / INFO_FILE).write_text(info.to_json() + "\n")
        (root / INFO_FILE).chmod(0o600)
        return info
    except BaseException:
        with contextlib.suppress(Exception):
            destroy(info)
        raise


def stop(info: PostgresInfo, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Stop the server (fast shutdown, then immediate, then SIGKILL); its data stays."""
    pid = _postmaster_pid(info)
    if pid is None:
        return
    for mode in ("fast", "immediate"):
        with contextlib.suppress(StackError):
            _run(
                _argv(Path(info.bin_dir) / "pg_ctl", "stop", "-D", info.data_dir, "-m", mode, "-w", "-t", 15),
                timeout=25,
            )
        if not is_alive(pid):
            return
    _kill_postmaster(pid, timeout=timeout)


def destroy(info: PostgresInfo, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Stop the server and delete the cluster (and the link to it)."""
    stop(info, timeout=timeout)
    _remove_root(info.root)
    if info.folder:
        link = Path(info.folder) / LINK_NAME
        if link.is_symlink() and not link.exists():
            link.unlink()


def destroy_root(root: Path) -> None:
    """Stop and delete the cluster in ``root``, even one whose record is half written."""
    try:
        info = PostgresInfo.from_json((root / INFO_FILE).read_text())
    except (OSError, ValueError, TypeError):
        info = PostgresInfo(root=root, port=0, database="", user="", password="", bin_dir=str(bin_dir()))
    stop(info)
    _remove_root(root)


def running(info: PostgresInfo) -> bool:
    """True if the cluster's server is up and lets the tests' role in."""
    if _postmaster_pid(info) is None:
        return False
    try:
        _check_login(info)
    except StackError:
        return False
    return True

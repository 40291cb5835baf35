"""What a killed fleet run left behind, found by its owner mark and ended (tests/fleet/fleet.py sets the mark)."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from pathlib import Path

from tests.stack import dockerd, postgres
from tests.stack.procs import MARKER_ENV, is_alive, start_time, terminate_tree

OWNER_ENV = "TESTS_STACK_OWNER"


def owner_mark() -> str:
    """This process as an owner: ``<pid>-<start time>`` (a reused pid is not mistaken for it)."""
    return f"{os.getpid()}-{start_time(os.getpid()) or ''}"


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
    return {key: value for key, _, value in pairs}


def _owner_alive(owner: str) -> bool:
    pid, _, started = owner.partition("-")
    return pid.isdigit() and is_alive(int(pid)) and (not started or start_time(int(pid)) == started)


def reap_orphans() -> list[int]:
    """End what a killed fleet run left behind: processes carrying a dead owner's TESTS_STACK_OWNER.

    PostgreSQL servers go through postgres.reap_orphans (which deletes their
    clusters), each daemon through dockerd.stop (its containerd, shims and
    mounts too), then anything else of a dead owner. Live runs' processes are left alone.
    """
    postgres.reap_orphans()  # its servers first: it deletes their folders too
    orphans: dict[int, str] = {}
    mine = {os.getpid(), os.getppid()}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        environ = _environ(int(entry.name))
        owner = environ.get(OWNER_ENV)
        if owner and not _owner_alive(owner) and is_alive(int(entry.name)):
            orphans[int(entry.name)] = environ.get(MARKER_ENV, "")

    def stop_daemon(state_dir: str) -> None:
        with contextlib.suppress(Exception):
            dockerd.stop(Path(state_dir), timeout=15)
            shutil.rmtree(Path(state_dir) / "docker", ignore_errors=True)  # its images: the logs stay

    daemons = {marker for marker in orphans.values() if marker and Path(marker).name.startswith("gw-")}
    all_at_once(stop_daemon, sorted(daemons))
    for pid in orphans:
        if is_alive(pid):
            terminate_tree(pid, timeout=5)
    return sorted(orphans)


def all_at_once(function, items: list) -> None:
    """``function(item)`` for every item, each in a thread of its own; returns when all are done."""
    threads = [threading.Thread(target=function, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

"""Names for a worker's claim on a job, and whether the process behind one has certainly ended.

A claim's token names the worker, its process and where it runs (machine and
PID namespace), plus a random part so it is never reused. Pure: no database.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
from pathlib import Path


def _here() -> str:
    """This machine and PID namespace: where a pid means the same process (not so across containers)."""
    try:
        namespace = os.readlink("/proc/self/ns/pid").strip("pid:[]")
    except OSError:
        namespace = "?"
    return f"{socket.gethostname()}/{namespace}"


def holder_token(worker_name: str) -> str:
    """A name for this claim: the worker, its process and where it runs, and a random part (never reused)."""
    return f"{worker_name} pid {os.getpid()} on {_here()} #{secrets.token_hex(3)}"[:200]


_TOKEN = re.compile(r" pid (?P<pid>\d+) on (?P<where>\S+) #")


def holder_is_gone(holder: str) -> bool:
    """True only when ``holder``'s process ran here and has certainly ended.

    A Celery pool process that was killed (OOM killer, SIGKILL) makes its
    worker reject the task for redelivery (``reject_on_worker_lost``): this
    lets that redelivery take the job over at once instead of after
    ``PULL_STALE_AFTER_SECONDS``. A process elsewhere, or a pid now used by
    another process, is never declared gone; the heartbeat decides those.
    """
    match = _TOKEN.search(holder or "")
    if match is None or match["where"] != _here():
        return False
    pid = int(match["pid"])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:  # a zombie is dead too, just not reaped yet
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False

"""Resident memory of process trees, from /proc (psutil is not a dependency).

``tree_rss(pids)`` is, for each root pid, the RSS of that process and all its
descendants, summed (pages shared between processes of a tree count once per
process: an over-estimate for a forking pool, exact for the agent's default
thread pool, which is one process). ``RssSampler`` records it every
``interval`` seconds in a background thread.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 1024 * 1024


def _children() -> dict[int, list[int]]:
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
    return children


def _rss(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        return 0  # gone meanwhile


def tree_rss(pids: list[int]) -> dict[int, int]:
    """Bytes resident in each root's process tree (one scan of /proc for all of them)."""
    children = _children()
    out = {}
    for root in pids:
        total, queue = 0, [root]
        while queue:
            pid = queue.pop()
            total += _rss(pid)
            queue.extend(children.get(pid, []))
        out[root] = total
    return out


class RssSampler:
    """Samples ``tree_rss(pids)`` every ``interval`` s until stopped; use as a context manager."""

    def __init__(self, pids: list[int], interval: float = 0.1) -> None:
        self.pids = list(pids)
        self.interval = interval
        self.samples: dict[int, list[int]] = {pid: [] for pid in self.pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            started = time.monotonic()
            for pid, rss in tree_rss(self.pids).items():
                if rss:
                    self.samples[pid].append(rss)
            if self._stop.wait(max(0.0, self.interval - (time.monotonic() - started))):
                return

    def peak_mb(self, pid: int) -> float:
        return max(self.samples[pid], default=0) / MB

    def median_mb(self, pid: int) -> float:
        values = sorted(self.samples[pid])
        return values[len(values) // 2] / MB if values else 0.0

    def count(self, pid: int) -> int:
        return len(self.samples[pid])

"""The agent's hold on one pull job, kept through the console's agent API (docs/agent-api.md, "Pull jobs").

The console does the claim and fences every write (:mod:`.actions`, through ``agentapi/events.py``); this is the
agent's end of it. A :class:`Link` sends the job's events for the holder that claimed it, and learns from each
answer whether the job is still its own (``lost``) and whether the user asked to cancel.

Progress and heartbeats never hold up a pull: the stream thread only leaves its latest snapshot here, and the
link's own thread (:meth:`Link.start`) sends it, at most every ``PULL_PROGRESS_WRITE_INTERVAL``, or a beat when
there is nothing new. When the console cannot be reached (restarted, a proxy down) those are dropped and the
pull goes on. The steps of the job (an attempt begins, ends, the container phase) are sent in order and retried
for up to ``PULL_STALE_AFTER_SECONDS``: until then the job is still this agent's, so the final state arrives
once the console is back. After that the console may have handed the job on, and the agent stops.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict

from django.conf import settings

from orchestrator.agent.client import ConsoleError, Refused, Unreachable, console

from .progress import Snapshot

log = logging.getLogger(__name__)

# The heartbeat beats at least this often, and three times per stale period.
HEARTBEAT_MAX_SECONDS = 5.0
# A job with nothing new to send still asks this often whether the user cancelled it (each answer says so):
# a Cancel takes effect within about a second even while the registry is silent.
CANCEL_POLL_SECONDS = 1.0
# A job's steps are tried again this long at most (and no longer than the stale period).
PATIENCE_MAX_SECONDS = 600.0


def heartbeat_period() -> float:
    return max(0.5, min(HEARTBEAT_MAX_SECONDS, settings.PULL_STALE_AFTER_SECONDS / 3))


class Link:
    """A claimed job: its id, the claim's holder token, and what the console last said of it."""

    def __init__(self, job_id: int, holder: str, *, period: float | None = None) -> None:
        self.job_id, self.holder = job_id, holder
        self.lost = threading.Event()
        self.period = min(heartbeat_period(), CANCEL_POLL_SECONDS) if period is None else period
        self.interval = settings.PULL_PROGRESS_WRITE_INTERVAL
        self._cancel = False
        self._pending: Snapshot | None = None
        self._sent_at = 0.0  # the last request of this job, any kind
        self._progress_at = 0.0  # the last one that carried progress
        self._silent_since = 0.0  # when progress stopped getting through (0: it gets through); logged once
        # One request of this job at a time, so the console sees its events in the order they happened.
        self._send_lock = threading.Lock()
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"Link(job={self.job_id}, holder={self.holder!r})"

    # ----------------------------------------------------------------- what the runner asks

    def cancel_requested(self) -> bool:
        """True when the user asked to cancel (as of the last answer), or the job is no longer this holder's."""
        return self.lost.is_set() or self._cancel

    def step(self, kind: str, **fields) -> bool:
        """Send one step of the job (with the progress not sent yet before it). False once the job is not ours."""
        if self.lost.is_set():
            return False
        return bool(self._patiently(kind, lambda: self._send([{"type": kind, **fields}])))

    def progress_due(self) -> bool:
        """Whether new progress would leave now: the last has been sent, and the interval has passed since (the
        stream's thread asks before it builds a snapshot)."""
        return self._pending is None and time.monotonic() - self._progress_at >= self.interval

    def progress(self, snapshot: Snapshot) -> None:
        """Leave the latest progress for the link's thread to send (never blocks the pull)."""
        with self._wake:
            self._pending = snapshot
            self._wake.notify()

    def read(self) -> dict | None:
        """The job as the console has it now (state, flags, message, its instance's document); None once the
        job is not ours (gone, its instance moved or deleted, or the console silent past the stale period)."""
        try:
            data = self._patiently("read", lambda: console().get(f"jobs/{self.job_id}", attempts=1, holder=self.holder))
        except Refused as refused:
            log.info("pull job %s: the console no longer shows it to this gateway (%s)", self.job_id, refused.code)
            self.lost.set()
            return None
        if data is None:
            return None
        self._cancel = bool(data.get("cancel_requested"))
        if data.get("held") is False:
            self.lost.set()
        return data

    def _patiently(self, what: str, call):
        """``call()``, tried again while the console cannot be reached, up to the stale period; then None. The
        one place a job's requests are retried: the calls themselves make one attempt each."""
        deadline = time.monotonic() + min(PATIENCE_MAX_SECONDS, float(settings.PULL_STALE_AFTER_SECONDS))
        pause = 1.0
        while not self.lost.is_set():
            try:
                return call()
            except Unreachable:
                if time.monotonic() >= deadline:
                    log.warning(
                        "pull job %s: the console has not answered for %s s; stopping (it gives the job to another "
                        "attempt)",
                        self.job_id,
                        settings.PULL_STALE_AFTER_SECONDS,
                    )
                    self.lost.set()
                    return None
                log.info("pull job %s: console unreachable; trying %s again in %.0f s", self.job_id, what, pause)
                time.sleep(pause)
                pause = min(pause * 2, 15.0)
        return None

    # ----------------------------------------------------------------- the link's thread

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"pull-link-{self.job_id}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._wake:
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set() and not self.lost.is_set():
            with self._wake:
                wait = self._until_due()
                if wait > 0:
                    self._wake.wait(wait)
            if self._stop.is_set():
                return
            if self._until_due() <= 0:
                self._beat()

    def _until_due(self) -> float:
        """Seconds until the next send: new progress once PULL_PROGRESS_WRITE_INTERVAL has passed since the last
        progress sent (the first of a job at once), else a beat once ``period`` has passed since any request."""
        now = time.monotonic()
        beat_in = self.period - (now - self._sent_at)
        if self._pending is None:
            return beat_in
        return min(beat_in, self.interval - (now - self._progress_at))

    def _beat(self) -> None:
        """Send the pending progress, or a beat: the job's row says this agent is alive and pulling."""
        try:
            self._send([])
        except ConsoleError as error:
            # Dropped: the next one carries newer figures. The job stays ours until the stale period.
            if not self._silent_since:
                log.warning(
                    "pull job %s: progress not sent (trying again while the pull goes on): %s", self.job_id, error
                )
                self._silent_since = time.monotonic()
            self._sent_at = self._progress_at = time.monotonic()
            return
        if self._silent_since:
            log.info(
                "pull job %s: the console answers again after %.0f s",
                self.job_id,
                time.monotonic() - self._silent_since,
            )
            self._silent_since = 0.0

    # ----------------------------------------------------------------- sending

    def _send(self, events: list[dict]) -> bool:
        with self._send_lock:
            with self._wake:
                pending, self._pending = self._pending, None
            batch = ([{"type": "progress", **asdict(pending)}] if pending is not None else []) + events
            if not batch:
                batch = [{"type": "beat"}]
            try:
                answer = console().post(
                    f"jobs/{self.job_id}/events", {"holder": self.holder, "events": batch}, attempts=1
                )
            except Refused as refused:
                # 404: the job is gone, or its instance is on another gateway now. Either way, not ours.
                log.warning("pull job %s: the console refused its events (%s); stopping", self.job_id, refused.code)
                self.lost.set()
                return False
            except Unreachable:
                if pending is not None:
                    # Kept for the next try: a step retried by _patiently must still carry its last progress.
                    with self._wake:
                        self._pending = self._pending or pending  # a newer one wins
                raise
            self._sent_at = time.monotonic()
            if pending is not None:
                self._progress_at = self._sent_at
        self._cancel = bool(answer.get("cancel_requested"))
        if answer.get("lost"):
            self.lost.set()
            return False
        return True

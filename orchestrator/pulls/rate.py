"""How fast a running pull downloads and how long its download has left, from the job row alone.

The row keeps no history of its byte count, so the rate is the average over the current attempt: the bytes
the attempt has downloaded over the seconds from the attempt's start to the job's ``heartbeat_at``.

* ``bytes_done`` counts this attempt's bytes only: each attempt folds its own stream from nothing
  (:mod:`.attempt`), and layers the daemon already had are not in it.
* The start is the attempt's entry in ``attempts``; the end is ``heartbeat_at``, not the web process's clock.
  The worker stamps both (every progress write moves the heartbeat too), so a gateway whose clock is off from
  the console's does not skew the figure; and the lease keeps beating through a silent stream (a stall, the
  gap before the next layer), so the average falls while no byte arrives, as it should.
* The attempt starts before its first byte (the daemon asks the registry for the manifest first): the rate
  reads a little low in the first seconds, never high. An average over the attempt rather than over the last
  few seconds is steadier, which a time left needs, at the cost of following a change of link speed slowly.

Time left counts the download only: the bytes still to download over the rate. Extraction has no size of its
own until it starts and runs layer by layer while other layers download, so it is not guessed at; once every
byte is in, :attr:`Estimate.downloaded` says so and the page shows that the layers are being extracted.

This module imports no model (the model's ``as_json`` uses it): :func:`for_job` reads a job's fields by name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from django.template.defaultfilters import filesizeformat
from django.utils.dateparse import parse_datetime

# Less data than this gives absurd figures (a first burst of a few KB over milliseconds): no rate yet.
MIN_SECONDS = 1.0


@dataclass(frozen=True)
class Estimate:
    rate: int | None = None  # bytes per second
    seconds_left: int | None = None  # of the download; None while a layer's size is unknown
    downloaded: bool = False  # every byte is in: what is left is extraction

    @property
    def rate_text(self) -> str:
        """ "12.3 MB/s", in the units the page shows byte counts in (Django's filesizeformat)."""
        return f"{filesizeformat(self.rate)}/s" if self.rate else ""

    @property
    def time_left_text(self) -> str:
        return time_left_text(self.seconds_left) if self.seconds_left is not None else ""


UNKNOWN = Estimate()


def estimate(bytes_done: int, bytes_total: int | None, seconds: float | None) -> Estimate:
    """The rate and time left of ``bytes_done`` bytes downloaded in ``seconds``, ``bytes_total`` in all (None
    while a layer's size is unknown)."""
    if bytes_total and bytes_done >= bytes_total:
        return Estimate(downloaded=True)
    if seconds is None or seconds < MIN_SECONDS or bytes_done <= 0:
        return UNKNOWN
    rate = bytes_done / seconds
    left = math.ceil((bytes_total - bytes_done) / rate) if bytes_total is not None else None
    return Estimate(rate=max(1, round(rate)), seconds_left=left)


def time_left_text(seconds: int) -> str:
    """ "about 40 s left", "about 3 min left", "about 2 h 5 min left"."""
    if seconds < 60:
        return f"about {max(1, seconds)} s left"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min left"
    hours, minutes = divmod(minutes, 60)
    return f"about {hours} h {minutes} min left" if minutes else f"about {hours} h left"


def for_job(job) -> Estimate:
    """The estimate of a PullJob (its fields read by name). Unknown unless an attempt is downloading under a
    worker that reports: queued, ended, in its container phase, or with its agent lost, there is no live rate."""
    if job.state != "running" or job.agent_lost:
        return UNKNOWN
    started = _attempt_started(job)
    if started is None or job.heartbeat_at is None:
        return UNKNOWN
    return estimate(job.bytes_done, job.bytes_total, (job.heartbeat_at - started).total_seconds())


def _attempt_started(job) -> datetime | None:
    """When the job's current attempt started, if it is still downloading and has written its first progress."""
    attempts = job.attempts or []
    current = attempts[-1] if attempts else {}
    if current.get("outcome") != "running" or current.get("number") != job.attempt:
        return None  # none begun yet, or its download is over (pulled: the container phase runs)
    return parse_datetime(current.get("started_at") or "")

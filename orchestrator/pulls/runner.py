"""One pull job from claim to end, on its gateway's agent: Kura's attempts and retries, then the container phase.

The task message carries only the job id. The agent claims the job through the console's agent API, which
answers the order for one attempt: the normalized reference, the limits, and that one instance's registry
credentials, decrypted (or made from stored AWS keys) by the console; "the gateway's AWS credentials" are the
agent's own (:mod:`orchestrator.agent.ecr`). Kura's retry semantics: up to ``download_retries`` further
attempts (0 = no limit; the budget is fixed on the job at queue time), ``download_retry_interval`` ms apart,
each bounded by ``download_timeout`` s. Each task makes one attempt; a failed one with retries left goes back
to queued on the console, which sends the task again, due after the interval. Every write is an event of the
claim (:mod:`.link`), fenced by the console.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from orchestrator.agent import ecr
from orchestrator.agent.client import Refused, console
from orchestrator.containers.phase import run_container_phase
from registries.daemon import open_client
from registries.errors import PullError

from .attempt import pull_once
from .holders import holder_is_gone, holder_token
from .link import Link
from .progress import Snapshot

log = logging.getLogger(__name__)

# After the n-th rate_limited answer in a row, wait interval * 2^(n-1), at most this long (or the
# interval itself when that is longer): a registry that counts requests is not asked again and again.
RATE_LIMIT_BACKOFF_CAP = 600.0
INTERNAL_ERROR = "The worker hit an internal error while pulling; its log has the details. Pull again."


def retry_delay(code: str, interval: float, rate_limited_in_a_row: int = 0) -> float:
    """Seconds to wait before the next attempt: the instance's interval, doubled per rate_limited in a row."""
    if code != "rate_limited" or rate_limited_in_a_row < 1:
        return interval
    doubled = interval * 2 ** min(rate_limited_in_a_row - 1, 30)
    return min(doubled, max(interval, RATE_LIMIT_BACKOFF_CAP))


class JobWriter:
    """A pull's progress for its link: a snapshot is built only when the link would send it now (its throttle,
    :meth:`Link.progress_due`), not for every event of the stream."""

    def __init__(self, link: Link) -> None:
        self.link = link
        self.pending: Snapshot | Callable[[], Snapshot] | None = None
        self.writes = 0

    def progress(self, snapshot: Snapshot | Callable[[], Snapshot], *, force: bool = False) -> None:
        """Note progress; hand it over if the link would send it now. A callable is only called then."""
        self.pending = snapshot
        if force or self.link.progress_due():
            self.flush()

    def flush(self) -> None:
        if self.pending is None:
            return
        self.link.progress(self.pending() if callable(self.pending) else self.pending)
        self.pending = None
        self.writes += 1


def claim(job_id: int, holder: str) -> dict | None:
    """The order of the attempt about to begin, now ``holder``'s; None when the console refuses the delivery.

    Raises Unreachable when the console cannot be asked (the task puts the message back).
    """
    try:
        return console().post(f"jobs/{job_id}/claim", {"holder": holder})
    except Refused as refused:
        current = refused.details.get("holder")
        if refused.status == 409 and isinstance(current, str) and holder_is_gone(current):
            # Its holder was a process of this agent that has certainly ended (an OOM-killed pool process):
            # the console ends that attempt now rather than when its heartbeat goes stale.
            try:
                return console().post(f"jobs/{job_id}/claim", {"holder": holder, "gone_holder": current})
            except Refused as again:
                refused = again
        # A second delivery (redelivered after a worker died, re-sent by the sweeper, a double click) of a job
        # that already has a worker or has ended; or a job of another gateway (404). Refusing it is what keeps
        # one pull per job.
        log.info("pull job %s: delivery refused (%s): %s", job_id, refused.code, refused.message)
        return None


def run(job_id: int, worker_name: str) -> str:
    """The pull task's body. Returns its result word: succeeded, failed, retrying, cancelled, lost or skipped."""
    holder = holder_token(worker_name)
    order = claim(job_id, holder)
    if order is None:
        return "skipped"
    link = Link(job_id, holder)
    link.start()
    begun = False
    try:
        if not link.step("begin_attempt", number=order["attempt"]):
            return _lost(link)
        begun = True
        return _attempt(order, link)
    except Exception:
        log.exception("pull job %s: internal error", job_id)
        number = order["attempt"] if begun else order["attempt"] - 1
        link.step(
            "fail", number=number, code="unknown", message=INTERNAL_ERROR, note="The worker hit an internal error."
        )
        return "failed"
    finally:
        link.stop()


def _attempt(order: dict, link: Link) -> str:
    """One attempt. A failure with retries left queues the job again, due after the interval: the task ends,
    so a pull waiting out its interval (or retrying a dead registry for ever) holds no worker."""
    job_id, number = order["job"], order["attempt"]
    writer = JobWriter(link)
    log.info("pull job %s: %s on %s (%s)", job_id, order["reference"], settings.DOCKER_HOST, link.holder)
    try:
        outcome = _pull(order, link, writer)
    except PullError as error:
        writer.flush()
        if link.lost.is_set():
            return _lost(link)
        if error.code == "cancelled" or link.cancel_requested():
            link.step("cancel_attempt", number=number, message=error.message)
            log.info("pull job %s cancelled", job_id)
            return "cancelled"
        if not error.retryable or not order["retries_left"]:
            link.step("fail", number=number, code=error.code, message=error.message)
            log.info("pull job %s failed: %s", job_id, error.code)
            return "failed"
        in_a_row = order["rate_limited_in_a_row"] + 1 if error.code == "rate_limited" else 0
        delay = retry_delay(error.code, order["download_retry_interval"] / 1000, in_a_row)
        log.info("pull job %s attempt %s failed (%s); retrying in %.1f s", job_id, number, error.code, delay)
        # The console queues the job again and sends its task, due after the delay.
        if not link.step("attempt_failed", number=number, code=error.code, message=error.message, retry_in=delay):
            return _lost(link)
        return "retrying"
    writer.progress(outcome.snapshot, force=True)
    if not link.step(
        "pulled", digest=outcome.digest or "", platform=outcome.platform or "", up_to_date=outcome.up_to_date
    ):
        return _lost(link)
    log.info("pull job %s pulled: %s", job_id, outcome.digest)
    # Kura runs the container next; the job ends there (succeeded only once it runs).
    result = run_container_phase(link, digest=outcome.digest or "")
    return _lost(link) if result == "lost" else result


@sensitive_variables("order", "auth", "secrets")
def _login(order: dict) -> tuple[dict | None, tuple[str, ...]]:
    """The attempt's auth_config and the secrets to scrub from messages. Raises PullError."""
    if order.get("credentials_error"):
        error = order["credentials_error"]
        raise PullError(error["code"], error["message"])
    if order.get("aws_chain"):
        return ecr.chain_login(order["aws_chain"]["host"], order["aws_chain"].get("registry_url") or "")
    return order.get("auth"), tuple(order.get("scrub") or ())


def _pull(order: dict, link: Link, writer: JobWriter):
    deadline = time.monotonic() + order["download_timeout"]
    auth, secrets = _login(order)
    client = open_client(settings.DOCKER_HOST)
    try:
        return pull_once(
            client,
            order["reference"],
            auth_config=auth,
            deadline=deadline,
            on_progress=writer.progress,
            should_cancel=link.cancel_requested,
            docker_host=settings.DOCKER_HOST,
            secrets=secrets,
            platform=order.get("platform") or None,
        )
    finally:
        client.close()


def _lost(link: Link) -> str:
    log.warning("pull job %s: %s no longer holds it; stopped without writing", link.job_id, link.holder)
    return "lost"

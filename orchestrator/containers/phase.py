"""The pull job's container phase: after the image is in place, run the instance's container and end the job.

Job states (a decision): a pull job with a container phase stays ``running``
(so the status page keeps polling) through pulled -> created -> running, and
ends ``succeeded`` only when the container runs, or ran and exited with code 0,
or when no container is wanted because the instance was disabled meanwhile. A
container that cannot be created or started, or an image that does not match
the required digest, fails the job with ``container_failed`` /
``digest_mismatch`` (``daemon_unreachable`` when the daemon is gone), and
``container_error`` says why.

Every write is a step of the claim of the agent that pulled (``pulls/link.py``), fenced by the console: once the
job has passed to another worker, nothing this one does changes the row. What it reads (the job's flags, the
instance's document) comes from the console too.
"""

from __future__ import annotations

import logging

from orchestrator.agent.client import ConsoleError
from orchestrator.agent.documents import Instance, fetch_instance
from orchestrator.models.pulls import PullJob
from orchestrator.pulls.link import Link

from . import report
from .daemon import ContainerError
from .lifecycle import ensure_running, remove_instance_containers

log = logging.getLogger(__name__)
State = PullJob.State


def run_container_phase(link: Link, *, digest: str) -> str:
    """Run the container of a job that has just pulled. Returns succeeded, failed, cancelled or lost.

    The console hears of the container's new state at once (the heartbeat's pass would be up to a beat late).
    """
    job = link.read()
    if job is None or link.lost.is_set():
        # Another attempt holds the job now, its instance was deleted (or moved away) during the pull, or the
        # console has been silent past the stale period: nothing of this phase is ours to do.
        return "lost"
    instance = Instance.of(job["instance"])
    try:
        return _run_phase(link, job, instance, digest=digest)
    finally:
        report.report(instance)


def _run_phase(link: Link, job: dict, instance: Instance, *, digest: str) -> str:
    pulled = job["message"]

    def finish(state: str, result: str, **fields) -> str:
        return result if link.step("finish", state=state, **fields) else "lost"

    if not instance.enabled:
        _remove_quietly(link.job_id, instance.pk)
        return finish(
            State.SUCCEEDED, "succeeded", message=_after(pulled, "The instance is disabled, so no container runs.")
        )
    if job["cancel_requested"]:
        return finish(
            State.CANCELLED, "cancelled", message="Cancelled after the pull; the container was left as it was."
        )

    def progress(**fields) -> None:
        link.step("container_progress", **fields)

    try:
        outcome = ensure_running(instance, job["reference"], digest, progress)
    except ContainerError as error:
        log.info("pull job %s: container phase failed: %s", link.job_id, error.code)
        return finish(
            State.FAILED,
            "failed",
            container_state=PullJob.ContainerState.FAILED,
            container_error=error.message,
            error_code=error.code,
            error_message=error.message,
            message=_after(pulled, "The container did not start."),
        )
    log.info("pull job %s: container %s %s", link.job_id, outcome.container_id[:12], outcome.state)
    if not _still_enabled(instance.pk):
        # Disabled or deleted while the container was being made: its converge_instance may have run already.
        _remove_quietly(link.job_id, instance.pk)
        return finish(
            State.SUCCEEDED,
            "succeeded",
            container_state=PullJob.ContainerState.PULLED,
            container_id="",
            message=_after(pulled, "The instance was disabled meanwhile, so its container was removed."),
        )
    return finish(
        State.SUCCEEDED,
        "succeeded",
        container_state=outcome.state,
        container_id=outcome.container_id,
        container_error="",
        message=_after(pulled, outcome.message)[:500],
    )


def _still_enabled(instance_id: int) -> bool:
    try:
        instance = fetch_instance(instance_id)
    except ConsoleError:
        return True  # cannot say: the converge task removes it if it was disabled meanwhile
    return instance is not None and instance.enabled


def _after(pulled: str, text: str) -> str:
    return f"{pulled}. {text}".lstrip(". ")


def _remove_quietly(job_id: int, instance_id: int) -> None:
    try:
        remove_instance_containers(instance_id)
    except ContainerError as error:
        log.warning("pull job %s: could not remove the container of disabled instance: %s", job_id, error.code)

"""The pull job's container phase: after the image is in place, run the instance's container and end the job.

Job states (a decision): a pull job with a container phase stays ``running``
(so the status page keeps polling) through pulled -> created -> running, and
ends ``succeeded`` only when the container runs, or ran and exited with code 0,
or when no container is wanted because the instance was disabled meanwhile. A
container that cannot be created or started, or an image that does not match
the required digest, fails the job with ``container_failed`` /
``digest_mismatch`` (``daemon_unreachable`` when the daemon is gone), and
``container_error`` says why.

Every write goes through the fence of the worker that pulled: once the job
has passed to another worker, nothing this one does changes the row.
"""

from __future__ import annotations

import logging

from orchestrator.models import ContainerInstance, PullJob
from orchestrator.pulls import actions

from . import report
from .daemon import ContainerError
from .lifecycle import ensure_running, remove_instance_containers

log = logging.getLogger(__name__)


def run_container_phase(fence: actions.Fence, *, digest: str) -> str:
    """Run the container of a job that has just pulled. Returns succeeded, failed, cancelled or lost.

    The console hears of the container's new state at once (the heartbeat's pass would be up to a beat late).
    """
    try:
        return _run_phase(fence, digest=digest)
    finally:
        job = PullJob.objects.filter(pk=fence.job_id).values("instance_id").first()
        if job is not None:
            report.refresh(job["instance_id"])


def _run_phase(fence: actions.Fence, *, digest: str) -> str:
    job = PullJob.objects.select_related("instance").filter(pk=fence.job_id).first()
    if job is None:  # the instance (and with it the job) was deleted during the pull
        return "succeeded"
    instance, pulled = job.instance, job.message
    if not instance.enabled:
        _remove_quietly(job.pk, instance.pk)
        done = actions.finish(
            fence, PullJob.State.SUCCEEDED, message=_after(pulled, "The instance is disabled, so no container runs.")
        )
        return "succeeded" if done else "lost"
    if job.cancel_requested:
        done = actions.finish(
            fence, PullJob.State.CANCELLED, message="Cancelled after the pull; the container was left as it was."
        )
        return "cancelled" if done else "lost"

    def progress(**fields) -> None:
        actions.container_progress(fence, **fields)

    try:
        outcome = ensure_running(instance, job.reference, digest, progress)
    except ContainerError as error:
        log.info("pull job %s: container phase failed: %s", job.pk, error.code)
        done = actions.finish(
            fence,
            PullJob.State.FAILED,
            container_state=PullJob.ContainerState.FAILED,
            container_error=error.message,
            error_code=error.code,
            error_message=error.message,
            message=_after(pulled, "The container did not start."),
        )
        return "failed" if done else "lost"
    log.info("pull job %s: container %s %s", job.pk, outcome.container_id[:12], outcome.state)
    if not ContainerInstance.objects.filter(pk=instance.pk, enabled=True).exists():
        # Disabled or deleted while the container was being made: its converge_instance may have run already.
        _remove_quietly(job.pk, instance.pk)
        done = actions.finish(
            fence,
            PullJob.State.SUCCEEDED,
            container_state=PullJob.ContainerState.PULLED,
            container_id="",
            message=_after(pulled, "The instance was disabled meanwhile, so its container was removed."),
        )
        return "succeeded" if done else "lost"
    done = actions.finish(
        fence,
        PullJob.State.SUCCEEDED,
        container_state=outcome.state,
        container_id=outcome.container_id,
        container_error="",
        message=_after(pulled, outcome.message)[:500],
    )
    return "succeeded" if done else "lost"


def _after(pulled: str, text: str) -> str:
    return f"{pulled}. {text}".lstrip(". ")


def _remove_quietly(job_id: int, instance_id: int) -> None:
    try:
        remove_instance_containers(instance_id)
    except ContainerError as error:
        log.warning("pull job %s: could not remove the container of disabled instance: %s", job_id, error.code)

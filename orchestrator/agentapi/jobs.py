"""A pull job as its gateway's agent sees it: claim it for one attempt, send its events, read it back.

The job is the agent's only while its claim holds (:mod:`orchestrator.pulls.actions`); these views add the
gateway: a job of another gateway's instance, like one that does not exist, is 404 and untouched.
"""

from __future__ import annotations

import logging

from django.http import JsonResponse
from django.views.decorators.debug import sensitive_variables

from orchestrator.models import PullJob
from orchestrator.pulls import actions

from . import documents, events, orders
from .http import ApiError, endpoint, not_found, read_json
from .schema import HOLDER, fail, record

log = logging.getLogger(__name__)

_CLAIM = record({"holder": HOLDER, "gone_holder": HOLDER}, required=("holder",))


def describe(job_id: int) -> str:
    """Why a claim was refused, for the agent's log: the job's state and who holds it."""
    row = PullJob.objects.filter(pk=job_id).values("state", "worker", "cancel_requested").first()
    if row is None:
        return "it no longer exists"
    held = f", held by {row['worker']}" if row["state"] == PullJob.State.RUNNING and row["worker"] else ""
    cancel = ", cancel requested" if row["cancel_requested"] else ""
    return f"it is {row['state']}{held}{cancel}"


def _own(request, job_id: int):
    return PullJob.objects.filter(pk=job_id, instance__gateway=request.gateway)


@endpoint("POST")
@sensitive_variables("answer")
def claim(request, job_id: int):
    """Take the job for ``holder`` and answer the order of the attempt about to begin."""
    body = _CLAIM(read_json(request), "body")
    if not _own(request, job_id).exists():
        raise not_found("pull job")
    gone = body.get("gone_holder")
    if gone:
        # The agent knows its own processes: the holder it names has died (an OOM-killed pool process), so
        # its attempt is ended now rather than when its heartbeat is stale. Within its own gateway only.
        actions.release_stale(job_id, gone_holder=gone)
    if actions.claim(job_id, body["holder"]) is None:
        current = PullJob.objects.filter(pk=job_id, state=PullJob.State.RUNNING).values_list("worker", flat=True)
        raise ApiError(
            409, "not_claimable", f"The job was not claimed: {describe(job_id)}.", holder=current.first() or None
        )
    job = PullJob.objects.select_related("instance").get(pk=job_id)
    answer = orders.order(job)
    log.info("agent api: gateway %s claimed pull job %s (attempt %s)", request.gateway.name, job_id, answer["attempt"])
    return JsonResponse(answer)


@endpoint("POST")
def post_events(request, job_id: int):
    """Apply a batch of the claim's writes; answer how many were applied and whether to stop."""
    holder, batch = events.parse_batch(read_json(request))
    if not _own(request, job_id).exists():
        raise not_found("pull job")
    applied, lost = events.apply(job_id, holder, batch)
    if lost:
        log.info("agent api: pull job %s: %s of %s events applied, its holder lost it", job_id, applied, len(batch))
    cancel = PullJob.objects.filter(pk=job_id, cancel_requested=True).exists()
    return JsonResponse({"applied": applied, "lost": lost, "cancel_requested": cancel})


@endpoint("GET")
def job_detail(request, job_id: int):
    """What the container phase reads: the job's state and flags, and its instance's document."""
    if set(request.GET) - {"holder"}:
        fail("query", "only holder may be given")
    holder = request.GET.get("holder")
    if holder is not None:
        HOLDER(holder, "holder")
    job = (
        _own(request, job_id)
        .select_related("instance")
        .defer("instance__registry_password", "instance__aws_secret_access_key")
        .first()
    )
    if job is None:
        raise not_found("pull job")
    return JsonResponse(
        {
            "job": job.pk,
            "state": job.state,
            "cancel_requested": job.cancel_requested,
            # Whether ``holder`` still holds it; null without a holder.
            "held": None if holder is None else (job.state == PullJob.State.RUNNING and job.worker == holder),
            "message": job.message,
            "reference": job.reference,
            "attempt": job.attempt,
            "digest": job.digest or None,
            # The settings label for the job's own reference (fixed at queue time; the document's is the
            # instance's current one).
            "settings_hash": documents.settings_hash(job.instance, job.reference),
            "instance": documents.instance_document(job.instance),
        }
    )

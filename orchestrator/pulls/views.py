"""A pull's status page (a fragment htmx polls), its JSON, and Cancel."""

from __future__ import annotations

from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from orchestrator.audit.record import record
from orchestrator.models import PullJob
from orchestrator.security.roles import PULL_INSTANCE, VIEW_INSTANCE, json_requires, requires
from registries.views import json_error

from .actions import request_cancel
from .rate import for_job as download_estimate


@requires(VIEW_INSTANCE)
@require_GET
@never_cache
def pull_detail(request, pk: int):
    job = get_object_or_404(PullJob.objects.select_related("instance__gateway"), pk=pk)
    template = "pulls/_pull_status.html" if request.htmx else "pulls/pull_detail.html"
    return render(request, template, {"job": job, "download": download_estimate(job)})


@require_GET
@never_cache
@json_requires(VIEW_INSTANCE, message="You may not see pulls.")
def pull_json(request, pk: int):
    try:
        job = PullJob.objects.select_related("instance__gateway").get(pk=pk)
    except PullJob.DoesNotExist:
        return json_error(404, "not_found", f"There is no pull {pk}.")
    return JsonResponse(job.as_json())


@requires(PULL_INSTANCE)
@require_POST
def pull_cancel(request, pk: int):
    job = get_object_or_404(PullJob.objects.select_related("instance__gateway"), pk=pk)
    cancelled = request_cancel(job)
    messages.info(request, "Cancelling the pull." if cancelled else "This pull has already ended.")
    outcome = "cancelling" if cancelled else "had already ended"
    record(request, "pull.cancel", instance=job.instance, message=f"pull #{job.pk} {outcome}")
    return redirect(job)

"""The instance screens: the list, the form (new and edit), the detail page, delete, pull again, check access."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import OuterRef, Q, Subquery
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_POST

from orchestrator.audit.record import record
from orchestrator.containers.status import LOG_LINES
from orchestrator.control.ask import wait_for
from orchestrator.models import ContainerInstance, ContainerState, ControlRequest, PullJob
from orchestrator.security.roles import (
    ADD_INSTANCE,
    CHANGE_INSTANCE,
    DELETE_INSTANCE,
    PULL_INSTANCE,
    VIEW_INSTANCE,
    json_requires,
    requires,
)
from registries.ecr import describe_expiry
from registries.views import json_error

from .access import from_reply
from .actions import delete_instances, pull_instance, save_instance
from .forms import ContainerInstanceForm

PAGE_SIZE = 50
ALREADY_UNDER_WAY = "A pull of this instance is already under way; showing it."
# Each poll of a pending check waits a little, so the button hears of the answer soon without asking often.
CHECK_POLL_WAIT_SECONDS = 2


def _with_latest_pull(queryset):
    latest = PullJob.objects.filter(instance=OuterRef("pk")).order_by("-queued_at", "-pk")
    # "Last pulled" is the latest success even when a later pull failed: the gateway still has what it pulled.
    succeeded = PullJob.objects.filter(
        instance=OuterRef("pk"), state=PullJob.State.SUCCEEDED, finished_at__isnull=False
    ).order_by("-finished_at")
    return queryset.annotate(
        latest_pull_id=Subquery(latest.values("pk")[:1]),
        latest_pull_state=Subquery(latest.values("state")[:1]),
        latest_pull_progress=Subquery(latest.values("progress")[:1]),
        latest_pull_error=Subquery(latest.values("error_code")[:1]),
        last_pulled_at=Subquery(succeeded.values("finished_at")[:1]),
        # As the instance's own gateway's agent last reported it ("" when it has no container there).
        container_state=Subquery(
            ContainerState.objects.filter(instance=OuterRef("pk"), gateway=OuterRef("gateway"), exists=True).values(
                "state"
            )[:1]
        ),
    )


@requires(VIEW_INSTANCE)
@require_GET
def instance_list(request):
    # The gateway comes in the same query (a join), so a page costs the same queries with 1 row or 50.
    queryset = _with_latest_pull(ContainerInstance.objects.select_related("gateway"))
    query = request.GET.get("q", "").strip()[:200]
    if query:
        queryset = queryset.filter(Q(name__icontains=query) | Q(image_name__icontains=query))
    state = request.GET.get("state", "")
    if state in PullJob.State.values:
        queryset = queryset.filter(latest_pull_state=state)
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "instances/instance_list.html",
        {"page": page, "query": query, "state": state, "states": PullJob.State.choices},
    )


@sensitive_post_parameters("registry_password", "aws_secret_access_key")
@requires(ADD_INSTANCE)
def instance_create(request):
    return _edit(request, ContainerInstance())


@sensitive_post_parameters("registry_password", "aws_secret_access_key")
@requires(CHANGE_INSTANCE)
def instance_edit(request, pk: int):
    return _edit(request, get_object_or_404(ContainerInstance, pk=pk))


def _edit(request, instance: ContainerInstance):
    creating = instance.pk is None
    form = ContainerInstanceForm(request.POST or None, instance=instance, user=request.user)
    if request.method == "POST" and form.is_valid():
        instance, job, created = save_instance(
            form, request.user, pull=request.user.has_perm(PULL_INSTANCE), request=request
        )
        for warning in form.warnings:
            messages.warning(request, warning)
        if job is not None:
            if not created:
                messages.info(request, ALREADY_UNDER_WAY)
            return redirect(job)
        stopping = " Its container is being stopped and removed; the image stays." if form.disabling else ""
        messages.success(request, f"Saved {instance.name}.{stopping}")
        return redirect(instance)
    return render(request, "instances/instance_form.html", {"form": form, "instance": instance, "creating": creating})


@requires(VIEW_INSTANCE)
@require_GET
def instance_detail(request, pk: int):
    instance = get_object_or_404(ContainerInstance.objects.select_related("gateway"), pk=pk)
    pulls = instance.pulls.all()[:20]
    # The last access check of the last hour (a save's check may have been answered after the page moved on).
    check = instance.control_requests.filter(kind=ControlRequest.Kind.CHECK).order_by("-created_at").first()
    return render(
        request,
        "instances/instance_detail.html",
        {"instance": instance, "pulls": pulls, "check": check, "log_lines": LOG_LINES},
    )


@requires(DELETE_INSTANCE)
def instance_delete(request, pk: int):
    instance = get_object_or_404(ContainerInstance, pk=pk)
    if request.method == "POST":
        (name,) = delete_instances([instance], request=request)
        messages.success(request, f"Deleted {name}. Its container is being stopped and removed; the image stays.")
        return redirect("instance-list")
    return render(request, "instances/instance_confirm_delete.html", {"instance": instance})


@requires(PULL_INSTANCE)
@require_POST
def instance_pull(request, pk: int):
    instance = get_object_or_404(ContainerInstance, pk=pk)
    job, created = pull_instance(instance, request)
    if not created:
        messages.info(request, ALREADY_UNDER_WAY)
    return redirect(job)


@sensitive_post_parameters("registry_password", "aws_secret_access_key")
@require_POST
@never_cache
@json_requires(ADD_INSTANCE, CHANGE_INSTANCE, message="Only operators may check access.")
def registry_check(request):
    """POST the form's registry fields (and ``instance`` to use its stored password) -> access, digest, platforms."""
    instance = None
    instance_id = request.POST.get("instance", "")
    if instance_id:
        if not instance_id.isdigit():
            return json_error(400, "invalid", "instance must be an id.")
        instance = ContainerInstance.objects.filter(pk=int(instance_id)).first()
        if instance is None:
            return json_error(404, "not_found", f"There is no instance {instance_id}.")
        if not request.user.has_perm(CHANGE_INSTANCE):
            # Its stored password is used only for someone who may change the instance.
            return json_error(403, "forbidden", "Checking a saved instance needs the permission to change it.")
    form = ContainerInstanceForm(
        request.POST, instance=instance or ContainerInstance(), user=request.user, always_check=True
    )
    form.is_valid()
    result = form.check_result
    checked = f"{form.cleaned_data.get('image_name', '')}:{form.cleaned_data.get('image_tag', '')}"
    # A pasted ECR password says when it stops working, before anything is saved, answered or not.
    note = {}
    if form.password_expiry is not None:
        note = {
            "password_expires_at": form.password_expiry.isoformat(),
            "password_note": f"The ECR password {describe_expiry(form.password_expiry)}.",
        }
    if result is None and form.check is not None:
        # The gateway's agent did not answer in time (or could not be asked): say so; the button polls.
        request_row = form.check.request
        record(
            request, "access.check", instance=instance, message=f"{'sent' if request_row else 'not sent'} ({checked})"
        )
        if request_row is None:
            return json_error(503, "not_checked", form.check.note, **note)
        poll_url = reverse("check-answer", args=[request_row.pk])
        message = f"{form.check.note} The answer shows here when it comes."
        return JsonResponse({"pending": True, "message": message, "poll_url": poll_url, **note}, status=202)
    if result is None:
        errors = {field: [str(e) for e in errs] for field, errs in form.errors.items() if field != "name"}
        message = " ".join(" ".join(texts) for texts in errors.values()) or "The form has errors."
        record(request, "access.check", instance=instance, message="failed: invalid_reference")
        return json_error(400, "invalid_reference", message, fields=errors)
    outcome = f"failed: {result.error['code']}" if result.error else "ok"
    record(request, "access.check", instance=instance, message=f"{outcome} ({checked})")
    return JsonResponse({**result.as_json(), **note})


@require_GET
@never_cache
@json_requires(ADD_INSTANCE, CHANGE_INSTANCE, message="Only operators may check access.")
def check_answer(request, request_id):
    """The answer to a check the button's POST did not wait for: as that POST would have returned it, or 202."""
    row = (
        ControlRequest.objects.filter(pk=request_id, kind=ControlRequest.Kind.CHECK, requested_by=request.user)
        .select_related("gateway")
        .first()
    )
    if row is None:  # someone else's check is not yours to read
        return json_error(404, "not_found", "There is no such check of yours (answers are kept for an hour).")
    check = from_reply(wait_for(row, CHECK_POLL_WAIT_SECONDS))
    if check.result is None:
        return JsonResponse({"pending": True, "message": check.note}, status=202)
    return JsonResponse(check.result.as_json())

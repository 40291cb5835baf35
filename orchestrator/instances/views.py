"""Screens of the console: instances, their pulls, and the health endpoint."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.db.models import OuterRef, Q, Subquery
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from registries.ecr import describe_expiry
from registries.views import json_error, unauthenticated

from . import containers, jobs
from .forms import ContainerInstanceForm
from .health import health_report
from .models import ContainerInstance, PullJob

VIEW = "orchestrator.view_containerinstance"
ADD = "orchestrator.add_containerinstance"
CHANGE = "orchestrator.change_containerinstance"
DELETE = "orchestrator.delete_containerinstance"
PULL = "orchestrator.pull_containerinstance"
PAGE_SIZE = 50


def _with_latest_pull(queryset):
    latest = PullJob.objects.filter(instance=OuterRef("pk")).order_by("-queued_at", "-pk")
    return queryset.annotate(
        latest_pull_id=Subquery(latest.values("pk")[:1]),
        latest_pull_state=Subquery(latest.values("state")[:1]),
        latest_pull_progress=Subquery(latest.values("progress")[:1]),
        latest_pull_error=Subquery(latest.values("error_code")[:1]),
    )


@login_required
@permission_required(VIEW, raise_exception=True)
@require_GET
def instance_list(request):
    queryset = _with_latest_pull(ContainerInstance.objects.all())
    query = request.GET.get("q", "").strip()[:200]
    if query:
        queryset = queryset.filter(Q(name__icontains=query) | Q(image_name__icontains=query))
    state = request.GET.get("state", "")
    if state in PullJob.State.values:
        queryset = queryset.filter(latest_pull_state=state)
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "orchestrator/instance_list.html",
        {"page": page, "query": query, "state": state, "states": PullJob.State.choices},
    )


@login_required
@permission_required(ADD, raise_exception=True)
def instance_create(request):
    return _edit(request, ContainerInstance())


@login_required
@permission_required(CHANGE, raise_exception=True)
def instance_edit(request, pk: int):
    return _edit(request, get_object_or_404(ContainerInstance, pk=pk))


def _edit(request, instance: ContainerInstance):
    creating = instance.pk is None
    form = ContainerInstanceForm(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        instance = form.save()
        for warning in form.warnings:
            messages.warning(request, warning)
        if not instance.enabled and not creating:
            # Kura: a disabled instance has no container (the image stays).
            containers.request_converge(instance.pk)
        if instance.enabled and request.user.has_perm(PULL):
            job, created = jobs.queue_pull(instance, request.user)
            if not created:
                messages.info(request, "A pull of this instance is already under way; showing it.")
            return redirect(job)
        stopping = " Its container is being stopped and removed; the image stays." if form.disabling else ""
        messages.success(request, f"Saved {instance.name}.{stopping}")
        return redirect(instance)
    return render(
        request, "orchestrator/instance_form.html", {"form": form, "instance": instance, "creating": creating}
    )


@login_required
@permission_required(VIEW, raise_exception=True)
@require_GET
def instance_detail(request, pk: int):
    instance = get_object_or_404(ContainerInstance, pk=pk)
    pulls = instance.pulls.all()[:20]
    return render(request, "orchestrator/instance_detail.html", {"instance": instance, "pulls": pulls})


@login_required
@permission_required(DELETE, raise_exception=True)
def instance_delete(request, pk: int):
    instance = get_object_or_404(ContainerInstance, pk=pk)
    if request.method == "POST":
        name, instance_id = instance.name, instance.pk
        instance.delete()
        containers.request_converge(instance_id)
        messages.success(request, f"Deleted {name}. Its container is being stopped and removed; the image stays.")
        return redirect("instance-list")
    return render(request, "orchestrator/instance_confirm_delete.html", {"instance": instance})


@login_required
@permission_required(PULL, raise_exception=True)
@require_POST
def instance_pull(request, pk: int):
    instance = get_object_or_404(ContainerInstance, pk=pk)
    job, created = jobs.queue_pull(instance, request.user)
    if not created:
        messages.info(request, "A pull of this instance is already under way; showing it.")
    return redirect(job)


@login_required
@permission_required(VIEW, raise_exception=True)
@require_GET
@never_cache
def instance_container(request, pk: int):
    """The htmx-polled fragment of the instance page: the container's state and its last lines of output."""
    instance = get_object_or_404(ContainerInstance, pk=pk)
    status = containers.container_status(instance)
    return render(request, "orchestrator/_container_status.html", {"instance": instance, "status": status})


@login_required
@permission_required(PULL, raise_exception=True)
@require_POST
def container_action(request, pk: int, action: str):
    instance = get_object_or_404(ContainerInstance, pk=pk)
    if action not in containers.ACTIONS:
        raise Http404("No such action.")
    try:
        messages.success(request, containers.act(instance, action))
    except containers.ContainerError as error:
        messages.error(request, error.message)
    return redirect(instance)


@login_required
@permission_required(VIEW, raise_exception=True)
@require_GET
@never_cache
def pull_detail(request, pk: int):
    job = get_object_or_404(PullJob.objects.select_related("instance"), pk=pk)
    template = "orchestrator/_pull_status.html" if request.htmx else "orchestrator/pull_detail.html"
    return render(request, template, {"job": job})


@require_GET
@never_cache
def pull_json(request, pk: int):
    # JSON clients get 401/403 rather than a redirect to the login page.
    if not request.user.is_authenticated:
        return unauthenticated()
    if not request.user.has_perm(VIEW):
        return json_error(403, "forbidden", "You may not see pulls.")
    try:
        job = PullJob.objects.select_related("instance").get(pk=pk)
    except PullJob.DoesNotExist:
        return json_error(404, "not_found", f"There is no pull {pk}.")
    return JsonResponse(job.as_json())


@login_required
@permission_required(PULL, raise_exception=True)
@require_POST
def pull_cancel(request, pk: int):
    job = get_object_or_404(PullJob, pk=pk)
    if jobs.request_cancel(job):
        messages.info(request, "Cancelling the pull.")
    else:
        messages.info(request, "This pull has already ended.")
    return redirect(job)


@require_POST
@never_cache
def registry_check(request):
    """POST the form's registry fields (and ``instance`` to use its stored password) -> access, digest, platforms."""
    if not request.user.is_authenticated:
        return unauthenticated()
    if not (request.user.has_perm(ADD) or request.user.has_perm(CHANGE)):
        return json_error(403, "forbidden", "Only operators may check access.")
    instance = None
    instance_id = request.POST.get("instance", "")
    if instance_id:
        if not instance_id.isdigit():
            return json_error(400, "invalid", "instance must be an id.")
        instance = ContainerInstance.objects.filter(pk=int(instance_id)).first()
        if instance is None:
            return json_error(404, "not_found", f"There is no instance {instance_id}.")
    form = ContainerInstanceForm(request.POST, instance=instance or ContainerInstance())
    result = form.check_only()
    if result is None:
        errors = {field: [str(e) for e in errs] for field, errs in form.errors.items() if field != "name"}
        message = " ".join(" ".join(messages_) for messages_ in errors.values()) or "The form has errors."
        return json_error(400, "invalid_reference", message, fields=errors)
    data = result.as_json()
    # A pasted ECR password says when it stops working, before anything is saved.
    if form.password_expiry is not None:
        data["password_expires_at"] = form.password_expiry.isoformat()
        data["password_note"] = f"The ECR password {describe_expiry(form.password_expiry)}."
    return JsonResponse(data)


@require_GET
@never_cache
def healthz(request):
    report = health_report()
    # The HTTP status is the web server's own health (it needs its database); the
    # body says whether pulls can run (task queue and Docker daemon too).
    status = 200 if report["checks"]["database"]["ok"] else 503
    if not request.user.is_authenticated:
        # Enough for a load balancer, nothing about the setup for strangers.
        report = {"ok": report["ok"], "checks": {name: {"ok": c["ok"]} for name, c in report["checks"].items()}}
    return JsonResponse(report, status=status)

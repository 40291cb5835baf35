"""Saving and deleting an instance, with what follows from it: its pull queued, its container removed.

The console's pages and the admin both come through here, so an instance and
its pull job commit together, and a task leaves only once they have.
"""

from __future__ import annotations

from django.db import transaction

from orchestrator.audit.record import diff, record, snapshot
from orchestrator.containers.actions import request_converge
from orchestrator.models import ContainerInstance, ControlRequest, Gateway, PullJob
from orchestrator.pulls.actions import queue_pull, request_cancel


def save_instance(form, user, *, pull: bool, request=None) -> tuple[ContainerInstance, PullJob | None, bool]:
    """Save a valid instance form; queue its pull when enabled and ``pull`` (the user may pull).

    Returns (instance, job or None, created: False when a pull was already under way).
    A disabled instance has no container (Kura): disabling one removes it. ``request`` is for the audit log.
    """
    creating = form.instance.pk is None
    with transaction.atomic():
        before = snapshot(form.instance)
        moved_from = form.initial.get("gateway") if not creating and "gateway" in form.changed_data else None
        instance = form.save()
        check = getattr(form, "check", None)
        if check is not None and check.request is not None and check.request.instance_id is None:
            # A new instance's check was asked before it existed: its answer belongs on its page.
            ControlRequest.objects.filter(pk=check.request.pk).update(instance=instance)
        instance_saved(instance, created=creating, request=request, changes=diff(form, before), moved_from=moved_from)
        if instance.enabled and pull:
            job, created = queue_pull(instance, user)
            record(request, "pull.queue", instance=instance, message=_queued(job, created, "by the save"))
            return instance, job, created
    return instance, None, False


def instance_saved(
    instance: ContainerInstance,
    *,
    created: bool,
    request=None,
    changes: dict | None = None,
    moved_from: int | None = None,
) -> None:
    """What follows any save (the admin's too): on record, and a disabled instance has no container (Kura).

    ``changes`` is :func:`orchestrator.audit.record.diff` of the saved form (secrets as "changed").
    ``moved_from``: the gateway (pk) the instance was on before this save moved it; its container goes from
    there (the next pull deploys it on the new one).
    """
    record(request, "instance.create" if created else "instance.change", instance=instance, changes=changes)
    if moved_from is not None:
        request_converge(instance.pk, Gateway.objects.get(pk=moved_from).name)
        # A queued pull's message waits on the old gateway's queue: it ends, and the next pull goes to the new one.
        # (The form refuses to move an instance whose pull is running.)
        for job in instance.pulls.filter(state=PullJob.State.QUEUED):
            request_cancel(job)
    if not instance.enabled and not created:
        request_converge(instance.pk, instance.gateway.name)


def pull_instance(instance: ContainerInstance, request, *, how: str = "") -> tuple[PullJob, bool]:
    """Pull again (the console's button, the admin's "Pull now"): queue_pull, on record. Returns (job, created)."""
    job, created = queue_pull(instance, request.user)
    record(request, "pull.queue", instance=instance, message=_queued(job, created, how))
    return job, created


def _queued(job: PullJob, created: bool, how: str) -> str:
    if not created:
        return f"pull #{job.pk} already under way"
    return f"pull #{job.pk} queued {how}".rstrip()


def delete_instances(instances, request=None) -> list[str]:
    """Delete instances (a queryset or a list); their containers are stopped and removed. Returns the names."""
    names = []
    with transaction.atomic():
        for instance in list(instances):
            instance_id, gateway = instance.pk, instance.gateway.name
            names.append(instance.name)
            instance.delete()
            record(request, "instance.delete", instance=instance, message=f"was #{instance_id}")
            request_converge(instance_id, gateway)
    return names

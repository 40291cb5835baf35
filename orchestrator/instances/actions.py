"""Saving and deleting an instance, with what follows from it: its pull queued, its container removed.

The console's pages and the admin both come through here, so an instance and
its pull job commit together, and a task leaves only once they have.
"""

from __future__ import annotations

from django.db import transaction

from orchestrator.containers.actions import request_converge
from orchestrator.models import ContainerInstance, PullJob
from orchestrator.pulls.actions import queue_pull


def save_instance(form, user, *, pull: bool) -> tuple[ContainerInstance, PullJob | None, bool]:
    """Save a valid instance form; queue its pull when enabled and ``pull`` (the user may pull).

    Returns (instance, job or None, created: False when a pull was already under way).
    A disabled instance has no container (Kura): disabling one removes it.
    """
    creating = form.instance.pk is None
    with transaction.atomic():
        instance = form.save()
        instance_saved(instance, created=creating)
        if instance.enabled and pull:
            job, created = queue_pull(instance, user)
            return instance, job, created
    return instance, None, False


def instance_saved(instance: ContainerInstance, *, created: bool) -> None:
    """What follows any save (the admin's too): a disabled instance has no container (Kura), the image stays."""
    if not instance.enabled and not created:
        request_converge(instance.pk)


def delete_instances(instances) -> list[str]:
    """Delete instances (a queryset or a list); their containers are stopped and removed. Returns the names."""
    names = []
    with transaction.atomic():
        for instance in list(instances):
            instance_id = instance.pk
            names.append(instance.name)
            instance.delete()
            request_converge(instance_id)
    return names

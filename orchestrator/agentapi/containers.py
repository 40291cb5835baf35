"""The gateway's instances as documents, and the states of their containers as the agent saw them.

States are written as :mod:`orchestrator.containers.report` writes them (a row per instance and gateway, only
when something changed), but in a constant number of queries per request, and only for instances on the
token's gateway: a state for any other instance is ignored and counted, never written.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.http import JsonResponse
from django.utils import timezone

from orchestrator.containers.report import EMPTY, FIELDS
from orchestrator.models import ContainerState

from .documents import instance_document, instances_of
from .http import endpoint, not_found, read_json
from .schema import INT32, INT63, boolean, integer, items, record, text

log = logging.getLogger(__name__)

MAX_STATES = 500
MAX_TEXT = 4000  # error and problem: the daemon's and the console's own sentences

# ContainerState's columns, bounded as the model bounds them.
_STATE = record(
    {
        "instance": integer(1, INT63),
        "exists": boolean,
        "container_id": text(64),
        "state": text(16),
        "exit_code": integer(-INT32 - 1, INT32, null=True),
        "restart_count": integer(0, INT32),
        "started_at": text(32),
        "finished_at": text(32),
        "error": text(MAX_TEXT),
        "image_digest": text(100),
        "settings_hash": text(100),
        "problem": text(MAX_TEXT),
    },
    required=("instance",),
)
_STATES = record({"states": items(_STATE, MAX_STATES)}, required=("states",))


@endpoint("GET")
def instance_list(request):
    """Every instance of the gateway (the heartbeat's container pass): one query, whatever their number."""
    return JsonResponse({"instances": [instance_document(instance) for instance in instances_of(request.gateway)]})


@endpoint("GET")
def instance_detail(request, instance_id: int):
    # 404 for one deleted or moved to another gateway: the agent then removes its labelled containers.
    instance = instances_of(request.gateway).filter(pk=instance_id).first()
    if instance is None:
        raise not_found("instance")
    return JsonResponse(instance_document(instance))


@endpoint("POST")
def container_states(request):
    """Write the reported states of this gateway's instances that changed; ignore the others."""
    reported = _STATES(read_json(request), "body")["states"]
    gateway = request.gateway
    # The last report of an instance wins; an upsert may not touch one row twice.
    latest = {state["instance"]: {**EMPTY, **state} for state in reported}
    own = set(instances_of(gateway).filter(pk__in=list(latest)).values_list("pk", flat=True))
    known = {row.instance_id: row for row in ContainerState.objects.filter(gateway=gateway, instance_id__in=own)}
    now = timezone.now()
    changed = [
        ContainerState(
            instance_id=instance_id,
            gateway=gateway,
            reported_at=now,
            **{name: values[name] for name in FIELDS},
        )
        for instance_id, values in latest.items()
        if instance_id in own and not _same(known.get(instance_id), values)
    ]
    with transaction.atomic():
        if changed:
            ContainerState.objects.bulk_create(
                changed,
                update_conflicts=True,
                unique_fields=["instance", "gateway"],
                update_fields=[*FIELDS, "reported_at"],
            )
        # Rows of instances that moved away are no longer this gateway's to show (as report.resync does).
        ContainerState.objects.filter(gateway=gateway).exclude(instance__gateway=gateway).delete()
    ignored = sum(1 for state in reported if state["instance"] not in own)
    if ignored:
        log.info("agent api: gateway %s reported %s states of instances not on it; ignored", gateway.name, ignored)
    return JsonResponse({"written": len(changed), "unchanged": len(own) - len(changed), "ignored": ignored})


def _same(row: ContainerState | None, values: dict) -> bool:
    return row is not None and all(getattr(row, name) == values[name] for name in FIELDS)

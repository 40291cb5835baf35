"""The audit log page: newest first, 50 a page, filtered by user, instance, action and time range."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from orchestrator.models import AuditEntry
from orchestrator.models.audit import CHANGED
from orchestrator.security.roles import VIEW_AUDIT, requires

PAGE_SIZE = 50


@requires(VIEW_AUDIT)
@require_GET
def audit_list(request):
    queryset = AuditEntry.objects.all()
    errors = []
    user = request.GET.get("user", "").strip()[:150]
    if user:
        queryset = queryset.filter(username__iexact=user)
    instance = request.GET.get("instance", "").strip()[:128]
    if instance:
        queryset = queryset.filter(instance_name__icontains=instance)
    action = request.GET.get("action", "")
    if action in AuditEntry.Action.values:
        queryset = queryset.filter(action=action)
    else:
        action = ""
    since, until = request.GET.get("from", "").strip(), request.GET.get("to", "").strip()
    start = _moment(since, "From", errors)
    if start is not None:
        queryset = queryset.filter(at__gte=start)
    end = _moment(until, "To", errors, end=True)
    if end is not None:
        queryset = queryset.filter(at__lt=end)
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    for entry in page.object_list:
        entry.rows = _rows(entry.changes)
    return render(
        request,
        "audit/audit_list.html",
        {
            "page": page,
            "filters": {"user": user, "instance": instance, "action": action, "from": since, "to": until},
            "filtered": bool(user or instance or action or start or end),
            "actions": AuditEntry.Action.choices,
            "errors": errors,
        },
    )


def _moment(value: str, label: str, errors: list[str], *, end: bool = False):
    """A date (a whole day) or a date and time (the browser's datetime-local, UTC); an end is exclusive.

    "To 2025-03-01" includes that whole day; "to 2025-03-01T10:30" includes the minute 10:30.
    """
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value[:32])
    except ValueError:
        errors.append(f"{label}: “{value[:32]}” is not a date (YYYY-MM-DD) or a date and time; it is ignored.")
        return None
    if end:
        if len(value) == 10:
            moment += timedelta(days=1)
        elif len(value) == 16:
            moment += timedelta(minutes=1)
        else:
            moment += timedelta(microseconds=1)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_current_timezone())
    return moment


def _rows(changes: dict) -> list[dict]:
    """What the page shows of ``changes``: a field, its old and new value, or that a secret changed."""
    rows = []
    for name, value in (changes or {}).items():
        if value == CHANGED:
            rows.append({"field": name, "secret": True})
        elif isinstance(value, list) and len(value) == 2:
            rows.append({"field": name, "old": _shown(value[0]), "new": _shown(value[1])})
        else:
            rows.append({"field": name, "old": "", "new": _shown(value)})
    return rows


def _shown(value) -> str:
    if value is None or value == "":
        return "(blank)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "(none)"
    return str(value)

"""Old audit entries go after ``AUDIT_KEEP_DAYS`` (365 unless set; 0 keeps them all).

``manage.py prune_audit`` prunes on demand (or from cron). Besides, the write
path prunes at most once a day per cache (:func:`schedule_prune`, called by
``record()``): the audit log grows only where entries are written, so that is
where it is kept in check, without a worker, beat or the pull sweeper.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from orchestrator.models import AuditEntry

log = logging.getLogger(__name__)

#: The cache key holding the last prune time, and how long it stays.
LAST_PRUNE_KEY = "orchestrator.audit.last_prune"
PRUNE_EVERY_SECONDS = 24 * 3600


def prune(keep_days: int | None = None, now=None) -> int:
    """Delete entries older than ``keep_days`` (default ``AUDIT_KEEP_DAYS``). Returns how many went."""
    keep_days = settings.AUDIT_KEEP_DAYS if keep_days is None else keep_days
    if keep_days <= 0:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=keep_days)
    deleted, _ = AuditEntry.objects.filter(at__lt=cutoff).delete()
    return deleted


def schedule_prune() -> None:
    """Prune once the caller's transaction commits, if the last prune is more than a day old."""
    if cache.get(LAST_PRUNE_KEY) is None:
        transaction.on_commit(prune_if_due)


def prune_if_due() -> None:
    # add() is atomic in a shared cache: of the processes that see no recent prune, one prunes.
    if not cache.add(LAST_PRUNE_KEY, timezone.now().isoformat(), timeout=PRUNE_EVERY_SECONDS):
        return
    try:
        deleted = prune()
    except Exception:  # noqa: BLE001 - an action that was recorded must not fail on housekeeping
        log.exception("pruning the audit log failed; the next try is in a day, or run manage.py prune_audit")
        return
    if deleted:
        log.info("audit log: removed %s entries older than %s days", deleted, settings.AUDIT_KEEP_DAYS)

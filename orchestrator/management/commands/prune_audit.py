"""`manage.py prune_audit`: remove audit entries older than AUDIT_KEEP_DAYS (or --days)."""

from django.conf import settings
from django.core.management.base import BaseCommand

from orchestrator.audit.prune import prune


class Command(BaseCommand):
    help = "Remove audit log entries older than AUDIT_KEEP_DAYS days (365 unless set; 0 keeps everything)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None, help="Keep this many days instead of AUDIT_KEEP_DAYS.")

    def handle(self, *args, days=None, **options):
        keep = settings.AUDIT_KEEP_DAYS if days is None else days
        deleted = prune(keep)
        self.stdout.write(f"Removed {deleted} audit entries older than {keep} days." if keep > 0 else "Kept all.")

"""`manage.py rotate_secrets`: re-encrypt every stored secret with the newest FIELD_ENCRYPTION_KEY.

Rotation: put the new key first in FIELD_ENCRYPTION_KEY (comma separated, the
old one after it), restart, run this command, then drop the old key.
"""

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from orchestrator.security.encryption import EncryptedTextField


class Command(BaseCommand):
    help = "Re-encrypt all stored secrets with the first key of FIELD_ENCRYPTION_KEY."

    def handle(self, *args, **options):
        total = 0
        for model in apps.get_models():
            fields = [f.attname for f in model._meta.get_fields() if isinstance(f, EncryptedTextField)]
            if not fields:
                continue
            with transaction.atomic():
                # Reading decrypts with whichever key matches; writing encrypts with the first.
                for row in model.objects.values("pk", *fields):
                    updates = {name: row[name] for name in fields if row[name]}
                    if updates:
                        model.objects.filter(pk=row["pk"]).update(**updates)
                        total += len(updates)
        self.stdout.write(f"Re-encrypted {total} secret(s) with the newest key.")

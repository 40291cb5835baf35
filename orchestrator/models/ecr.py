"""ECR passwords the console made from stored AWS keys, cached until half their life."""

from __future__ import annotations

from django.db import models

from orchestrator.security.encryption import EncryptedTextField


class EcrTokenCache(models.Model):
    """ECR passwords made with boto3, kept (encrypted) until half their life, shared by all worker processes.

    The key is a hash of account, region and the credentials used, so a new key
    or secret never reuses a token made with the old one.
    """

    key = models.CharField(max_length=64, unique=True)
    password = EncryptedTextField()
    fetched_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    refresh_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"ECR token {self.key[:12]} (refresh at {self.refresh_at:%Y-%m-%d %H:%M} UTC)"

    def __repr__(self) -> str:
        return f"<EcrTokenCache {self.key[:12]}>"

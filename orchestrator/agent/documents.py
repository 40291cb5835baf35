"""What the agent gets of an instance from the console: its document (agentapi/documents.py), as attributes.

The agent's container code reads ``pk``, ``name``, ``enabled`` and the spec of an instance; a document gives
those without a database row, and without any secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .client import Refused, console


@dataclass(frozen=True)
class Instance:
    pk: int
    name: str
    enabled: bool
    reference: str = ""
    digest_pin: str = ""
    spec: dict = field(default_factory=dict)
    settings_hash: str | None = None

    @classmethod
    def of(cls, document: dict) -> Instance:
        return cls(
            pk=document["id"],
            name=document["name"],
            enabled=document["enabled"],
            reference=document.get("reference", ""),
            digest_pin=document.get("digest_pin") or "",
            spec=document.get("spec") or {},
            settings_hash=document.get("settings_hash"),
        )


def fetch_instance(instance_id: int, *, attempts: int = 3) -> Instance | None:
    """The instance as the console has it now; None when it is not this gateway's (deleted, or moved away).

    Raises ConsoleError (Unreachable) when the console cannot be asked.
    """
    try:
        return Instance.of(console().get(f"instances/{instance_id}", attempts=attempts))
    except Refused as refused:
        if refused.status == 404:
            return None
        raise

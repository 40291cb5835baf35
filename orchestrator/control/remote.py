"""The agent's side of control requests: take one from the console and answer it, through the agent API.

The console does the claim (one taker, its secrets wiped as they are handed over) and the scoping (a request
of another gateway is a 404 to this agent's token): see orchestrator/agentapi/control.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from orchestrator.agent.client import Refused, console
from orchestrator.agent.documents import Instance

log = logging.getLogger(__name__)


@dataclass
class Taken:
    id: str
    kind: str
    payload: dict
    instance: Instance | None
    secrets: dict = field(default_factory=dict, repr=False)


def take(request_id: str) -> Taken | None:
    """The request, now this agent's; None when it is another gateway's, gone, taken or too old."""
    try:
        data = console().post(f"control/{request_id}/take")
    except Refused as refused:
        log.info("control request %s not taken: %s", request_id, refused.code)
        return None
    document = data.get("instance")
    return Taken(
        id=data["id"],
        kind=data["kind"],
        payload=data.get("payload") or {},
        instance=Instance.of(document) if document else None,
        secrets=data.get("secrets") or {},
    )


def answer(request_id: str, data: dict) -> None:
    console().post(f"control/{request_id}/answer", {"answer": data})

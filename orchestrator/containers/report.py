"""The agent reports its containers' states to the console: after each action, and a full pass every heartbeat.

Through the agent API (``POST /agent/v1/containers``): the console writes a row only when something changed,
so a quiet gateway costs one read per heartbeat. The web shows these rows and never asks the daemon.
"""

from __future__ import annotations

import logging

from orchestrator.agent.client import ConsoleError, console
from orchestrator.agent.documents import Instance, fetch_instance

from .daemon import ContainerError, daemon_client
from .status import observe

log = logging.getLogger(__name__)

BATCH = 500  # states per request, the API's limit

EMPTY = {
    "exists": False,
    "container_id": "",
    "state": "",
    "exit_code": None,
    "restart_count": 0,
    "started_at": "",
    "finished_at": "",
    "error": "",
    "image_digest": "",
    "settings_hash": "",
    "problem": "",
}
# The columns of a ContainerState row the agent reports (the console compares them to write only changes).
FIELDS = tuple(EMPTY)


def refresh(instance_id: int) -> None:
    """Report one instance's container now (after a start, a stop, a pull's container phase, a removal, an event).

    Only the agent of the instance's own gateway reports it: the console answers another gateway's agent (after
    a move, the old one) 404, and nothing is reported.
    """
    try:
        instance = fetch_instance(instance_id, attempts=2)
    except ConsoleError as error:
        log.info("instance %s: container state not reported: %s", instance_id, type(error).__name__)
        return
    if instance is not None:
        report(instance)


def report(instance: Instance) -> None:
    """Report the container of an instance whose document the agent has just been given (no need to ask)."""
    try:
        client = daemon_client()
    except ContainerError:
        return
    try:
        _send([_state(instance, observe(client, instance))])
    except (ContainerError, ConsoleError) as error:
        log.info("instance %s: container state not reported: %s", instance.pk, type(error).__name__)
    finally:
        client.close()


def resync() -> int:
    """Report the containers of every instance of this agent's gateway; the console writes the changed ones.

    Returns how many it wrote.
    """
    instances = [Instance.of(document) for document in console().get("instances", attempts=1)["instances"]]
    if not instances:
        return 0
    client = daemon_client()
    try:
        states = [_state(instance, observe(client, instance)) for instance in instances]
    finally:
        client.close()
    return _send(states)


def _state(instance: Instance, seen: dict) -> dict:
    return {**EMPTY, **seen, "instance": instance.pk}


def _send(states: list[dict]) -> int:
    written = 0
    for start in range(0, len(states), BATCH):
        written += console().post("containers", {"states": states[start : start + BATCH]}, attempts=2)["written"]
    return written

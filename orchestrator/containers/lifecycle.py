"""The container of an instance on the gateway's Docker daemon: Kura's lifecycle after the pull.

Enabled and saved: pull, then :func:`ensure_running` creates and starts a
container named after the instance with its settings (:mod:`.spec`).
Disabled or deleted: :func:`remove_instance_containers` stops and removes it;
the image stays.

"Pull again" on a mutable tag: the daemon asks the registry for the tag's
current digest and downloads only what changed; the container is recreated only
when the image it runs (its image ID) is not the one the tag now names, or its
settings changed. Otherwise it is left running (or started, if it was stopped).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import docker

from orchestrator.agent.client import ConsoleError
from orchestrator.agent.documents import Instance, fetch_instance
from orchestrator.models.pulls import PullJob

from .daemon import (
    LABEL_DIGEST,
    LABEL_INSTANCE,
    LABEL_SETTINGS,
    ContainerError,
    bridge_missing,
    by_name,
    call,
    daemon_client,
    labelled,
    labels_of,
    name_of,
    repo_digests,
    stop_and_remove,
    stranger_message,
)
from .spec import SpecErrors, build_spec

log = logging.getLogger(__name__)

SETTLE_SECONDS = 1.0


@dataclass
class Outcome:
    state: str  # "running" or "exited" (with code 0)
    container_id: str
    message: str


def _settle(client: docker.APIClient, container_id: str) -> dict:
    """Inspect the container until it has run for SETTLE_SECONDS, or stopped (or restarts) before that."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        info = call("inspect the container", client.inspect_container, container_id)
        state = info.get("State") or {}
        if not state.get("Running") or state.get("Restarting") or time.monotonic() >= deadline:
            return info
        time.sleep(0.2)


def _started(client: docker.APIClient, container_id: str, name: str, what: str) -> Outcome:
    """Judge a container that was just started: running, exited with 0, or failed."""
    info = _settle(client, container_id)
    state = info.get("State") or {}
    code = state.get("ExitCode")
    if state.get("Restarting"):
        raise ContainerError(
            "container_failed",
            f"The container {name} keeps stopping (last exit code {code}) and Docker keeps restarting it. Its output "
            "on the instance page says why.",
        )
    if state.get("Running"):
        return Outcome("running", container_id, f"Container {name} {what} and running.")
    if code == 0:
        return Outcome("exited", container_id, f"Container {name} {what}; it ran and exited with code 0.")
    detail = f": {state['Error']}" if state.get("Error") else ""
    raise ContainerError(
        "container_failed",
        f"The container {name} stopped right after it started, with exit code {code}{detail}. Its output on the "
        "instance page says why; check the entrypoint and environment.",
    )


def ensure_running(
    instance: Instance,
    reference: str,
    digest: str,
    progress: Callable[..., None] = lambda **fields: None,
) -> Outcome:
    """Make the instance's container run ``reference`` with the instance's settings; recreate only if needed.

    ``instance`` is the console's document of it (``agent/documents.py``): its name, id, spec and digest pin.
    """
    try:
        spec = build_spec(instance.spec, name=instance.name)
    except SpecErrors as errors:
        raise ContainerError(
            "container_failed", f"The container settings are invalid ({errors}). Edit the instance to fix them."
        ) from None
    client = daemon_client()
    try:
        return _ensure_running(client, instance, reference, digest, spec, progress)
    finally:
        client.close()


def _ensure_running(client, instance, reference, digest, spec, progress) -> Outcome:
    name = instance.name
    image = call(f"find the pulled image {reference}", client.inspect_image, reference)
    image_id = image["Id"]
    digests = repo_digests(image) | ({digest} if digest else set())
    if not digest and digests:
        digest = sorted(digests)[0]

    mine = labelled(client, instance.pk)
    # Containers made for this instance under an earlier name go first.
    for summary in mine:
        if name_of(summary) != name:
            log.info("removing container %s of instance %s (renamed to %s)", name_of(summary), instance.pk, name)
            stop_and_remove(client, summary["Id"])
    current = by_name(client, name)
    owner = labels_of(current).get(LABEL_INSTANCE)
    if current is not None and owner != str(instance.pk):
        if owner and _not_this_gateways(owner):
            # Left behind by a deleted instance (say the task queue was down), or by one that has moved to
            # another gateway: not this gateway's any more, so ours to replace.
            log.info("removing container %s of deleted instance %s", name, owner)
            stop_and_remove(client, current["Id"])
            current = None
        elif owner:
            raise ContainerError(
                "container_failed",
                f"A container named {name} still belongs to another instance of this console (renamed since). Pull "
                f"that instance again to clean it up, or remove the container (docker rm -f {name}).",
            )
        else:
            raise ContainerError("container_failed", stranger_message(name))

    pin = instance.digest_pin
    if pin and pin not in digests:
        note = ""
        if current is not None and labels_of(current).get(LABEL_DIGEST) != pin:
            stop_and_remove(client, current["Id"])
            note = " The old container, which ran another image, was stopped and removed."
        elif current is not None:
            note = " The container already running the required image was left running."
        raise ContainerError(
            "digest_mismatch",
            f"The image {reference} has digest {digest or 'unknown'}, not the required {pin}, so the container was "
            f"not started.{note} If the new image is intended, update the required digest.",
        )

    wanted = spec.settings_hash(reference)
    what = "created"
    if current is not None:
        labels = labels_of(current)
        same_settings = labels.get(LABEL_SETTINGS) == wanted
        same_image = current.get("Image") == image_id
        if same_settings and same_image:
            state = current.get("State") or {}
            if state.get("Running") and not state.get("Restarting"):
                return Outcome("running", current["Id"], f"Container {name} is up to date and running.")
            call(f"start the container {name}", client.start, current["Id"])
            return _started(client, current["Id"], name, f"was {state.get('Status', 'stopped')}; started again")
        what = (
            "recreated ("
            + ", ".join(
                part
                for part, changed in (("new image", not same_image), ("new settings", not same_settings))
                if changed
            )
            + ")"
        )
        progress(message=f"Replacing container {name}: stopping the old one")
        stop_and_remove(client, current["Id"])

    kwargs = spec.create_kwargs()
    host_config = call("check the container settings", client.create_host_config, **kwargs["host_config"])
    labels = {LABEL_INSTANCE: str(instance.pk), LABEL_SETTINGS: wanted, LABEL_DIGEST: digest or ""}
    created = call(
        f"create the container {name}",
        client.create_container,
        reference,
        name=name,
        labels=labels,
        host_config=host_config,
        detach=True,
        **kwargs["config"],
    )
    container_id = created["Id"]
    progress(
        container_state=PullJob.ContainerState.CREATED,
        container_id=container_id,
        message=f"Container {name} created; starting it",
    )
    call(f"start the container {name}", client.start, container_id)
    outcome = _started(client, container_id, name, what)
    if spec.network_mode in (None, "bridge") and bridge_missing(client):
        outcome.message += (
            " Note: this Docker daemon has no bridge network, so the container has no network at all; set the "
            "network mode to host or none to say which you mean."
        )
    return outcome


def _not_this_gateways(owner: str) -> bool:
    """Whether the instance a container's label names is no longer this gateway's (deleted, or moved away)."""
    if not owner.isdigit() or len(owner) > 18:
        return False
    try:
        return fetch_instance(int(owner)) is None
    except ConsoleError:
        return False  # cannot tell now: the container is left alone, and the pull says whose it is


def remove_instance_containers(instance_id: int) -> list[str]:
    """Stop and remove every container this console made for the instance. Returns their names."""
    client = daemon_client()
    try:
        removed = []
        for summary in labelled(client, instance_id):
            stop_and_remove(client, summary["Id"])
            removed.append(name_of(summary))
        return removed
    finally:
        client.close()

"""The Docker daemon as the container phase sees it: one client per use, the console's labels, errors in its codes.

Every container the console makes carries labels, and recreation decisions
read them rather than guess:

* ``io.console.instance``: the instance's primary key (finds the container
  again after a rename or a delete);
* ``io.console.settings-hash``: a fingerprint of image reference + settings;
* ``io.console.image-digest``: the registry digest the container was made from.

A container with the instance's name that the console did not make is never touched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import docker
import docker.errors
from django.conf import settings

from registries.daemon import open_client
from registries.errors import PullError, classify_exception

LABEL_INSTANCE = "io.console.instance"
LABEL_SETTINGS = "io.console.settings-hash"
LABEL_DIGEST = "io.console.image-digest"
# Seconds a container gets to stop after SIGTERM before Docker kills it (Docker's own default).
STOP_TIMEOUT = 10
# A container that exits within this many seconds of starting did not really start.


class ContainerError(Exception):
    """The container phase failed; ``code`` is one of the job error codes, ``message`` says what to do."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def daemon_client() -> docker.APIClient:
    try:
        return open_client(settings.DOCKER_HOST)
    except PullError as error:
        raise ContainerError(error.code, error.message) from None


def daemon_error(exc: Exception, doing: str) -> ContainerError:
    """A Docker SDK exception -> ContainerError with the daemon's own words."""
    if isinstance(exc, ContainerError):
        return exc
    if isinstance(exc, docker.errors.APIError):
        explanation = str(exc.explanation or exc).strip()
        return ContainerError("container_failed", f"The Docker daemon could not {doing}: {explanation}")
    error = classify_exception(exc, "", settings.DOCKER_HOST)
    return ContainerError(error.code, error.message)


def call(doing: str, function: Callable, *args, **kwargs) -> Any:
    try:
        return function(*args, **kwargs)
    except Exception as exc:
        raise daemon_error(exc, doing) from None


def labelled(client: docker.APIClient, instance_id: int) -> list[dict]:
    """Containers (running or not) this console made for the instance."""
    return call("list containers", client.containers, all=True, filters={"label": f"{LABEL_INSTANCE}={instance_id}"})


def by_name(client: docker.APIClient, name: str) -> dict | None:
    try:
        return client.inspect_container(name)
    except docker.errors.NotFound:
        return None
    except Exception as exc:
        raise daemon_error(exc, f"look up the container {name}") from None


def labels_of(info: dict | None) -> dict:
    """A container's labels (inspect output); {} when it has none."""
    return ((info or {}).get("Config") or {}).get("Labels") or {}


def name_of(summary: dict) -> str:
    names = summary.get("Names") or [""]
    return names[0].lstrip("/")


def stop_and_remove(client: docker.APIClient, container_id: str) -> None:
    try:
        client.stop(container_id, timeout=STOP_TIMEOUT)
        client.remove_container(container_id, force=True)
    except docker.errors.NotFound:
        return
    except Exception as exc:
        raise daemon_error(exc, "stop and remove the old container") from None


def stranger_message(name: str) -> str:
    return (
        f"A container named {name} already exists on the gateway and was not made by this console, so it was left "
        f"alone. Rename the instance, or remove that container (docker rm -f {name}) and pull again."
    )


def repo_digests(image: dict) -> set[str]:
    return {entry.split("@", 1)[1] for entry in image.get("RepoDigests") or [] if "@" in entry}


def bridge_missing(client: docker.APIClient) -> bool:
    try:
        return not any(network.get("Name") == "bridge" for network in client.networks(names=["bridge"]))
    except Exception:  # only a hint; never fail the phase for it
        return False

"""The agent's side of the container panel: the container's state, its output, and Start / Stop / Restart.

Only an agent calls these (the web reads what the agent reported, see :mod:`.panel`)."""

from __future__ import annotations

import docker
import docker.errors

from orchestrator.models import ContainerInstance

from .daemon import (
    LABEL_DIGEST,
    LABEL_INSTANCE,
    LABEL_SETTINGS,
    STOP_TIMEOUT,
    ContainerError,
    by_name,
    call,
    daemon_client,
    daemon_error,
    labels_of,
    stranger_message,
)

LOG_LINES = 200
LOG_MAX_CHARS = 64 * 1024
ACTIONS = ("start", "stop", "restart")


def disabled_message(instance: ContainerInstance) -> str:
    return f"{instance.name} is disabled: enable it (edit and save) to run its container."


def _mine_by_name(client: docker.APIClient, instance: ContainerInstance) -> dict | None:
    info = by_name(client, instance.name)
    if info is None:
        return None
    if labels_of(info).get(LABEL_INSTANCE) != str(instance.pk):
        raise ContainerError("container_failed", stranger_message(instance.name))
    return info


def observe(client: docker.APIClient, instance: ContainerInstance) -> dict:
    """The instance's container as the daemon has it: the fields of a ContainerState row (exists False: none).

    Raises ContainerError when the daemon does not answer: then nothing is known, and nothing is reported.
    """
    try:
        info = _mine_by_name(client, instance)
    except ContainerError as error:
        if error.code != "container_failed":
            raise
        return {"exists": False, "problem": error.message}  # a stranger has the name
    if info is None:
        return {"exists": False, "problem": ""}
    state = info.get("State") or {}
    labels = labels_of(info)
    return {
        "exists": True,
        "problem": "",
        "container_id": info["Id"],
        "state": state.get("Status", ""),
        "exit_code": state.get("ExitCode"),
        "restart_count": info.get("RestartCount", 0),
        "started_at": _when(state.get("StartedAt")),
        "finished_at": _when(state.get("FinishedAt")),
        "error": state.get("Error") or "",
        "image_digest": labels.get(LABEL_DIGEST, ""),
        "settings_hash": labels.get(LABEL_SETTINGS, ""),
    }


def read_logs(instance: ContainerInstance) -> dict:
    """The last LOG_LINES lines of the container's output: {"logs": text} or {"error": why not}."""
    try:
        client = daemon_client()
    except ContainerError as error:
        return {"error": error.message}
    try:
        info = _mine_by_name(client, instance)
        if info is None:
            return {"error": f"There is no container for {instance.name}."}
        raw = client.logs(info["Id"], stdout=True, stderr=True, tail=LOG_LINES, timestamps=False)
        return {"logs": raw.decode("utf-8", "replace")[-LOG_MAX_CHARS:]}
    except ContainerError as error:
        return {"error": error.message}
    except docker.errors.APIError as exc:
        return {"error": f"No output to show: {str(exc.explanation or exc).strip()}."}
    except Exception as exc:
        return {"error": daemon_error(exc, "read the container's output").message}
    finally:
        client.close()


def act(instance: ContainerInstance, action: str) -> str:
    """Start, stop or restart the instance's existing container. Returns a message; raises ContainerError."""
    if action not in ACTIONS:
        raise ContainerError("invalid", f"Unknown action {action!r}.")
    if action in ("start", "restart") and not instance.enabled:
        raise ContainerError("disabled", disabled_message(instance))
    client = daemon_client()
    try:
        info = _mine_by_name(client, instance)
        if info is None:
            raise ContainerError(
                "no_container", f"There is no container for {instance.name} yet: use Pull again to create it."
            )
        if action == "start":
            call(f"start {instance.name}", client.start, info["Id"])
        elif action == "stop":
            call(f"stop {instance.name}", client.stop, info["Id"], timeout=STOP_TIMEOUT)
        else:
            call(f"restart {instance.name}", client.restart, info["Id"], timeout=STOP_TIMEOUT)
    finally:
        client.close()
    past = {"start": "Started", "stop": "Stopped", "restart": "Restarted"}[action]
    return f"{past} the container {instance.name}."


def _when(value: str | None) -> str:
    """Docker's RFC 3339 time, or '' for its zero time."""
    if not value or value.startswith("0001-"):
        return ""
    return value[:19].replace("T", " ") + " UTC"

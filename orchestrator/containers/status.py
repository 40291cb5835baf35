"""What the instance page shows of its container (state, exit code, restarts, output), and its buttons."""

from __future__ import annotations

from dataclasses import dataclass, field

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
from .spec import SpecErrors, build_spec, spec_values

LOG_LINES = 200
LOG_MAX_CHARS = 64 * 1024
ACTIONS = ("start", "stop", "restart")


@dataclass
class ContainerStatus:
    """What the instance page shows about the container."""

    exists: bool = False
    name: str = ""
    container_id: str = ""
    state: str = ""
    exit_code: int | None = None
    restart_count: int = 0
    started_at: str = ""
    finished_at: str = ""
    error: str = ""
    image_digest: str = ""
    up_to_date: bool | None = None
    logs: str = ""
    logs_error: str = ""
    problem: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def short_id(self) -> str:
        return self.container_id[:12]


def _mine_by_name(client: docker.APIClient, instance: ContainerInstance) -> dict | None:
    info = by_name(client, instance.name)
    if info is None:
        return None
    if labels_of(info).get(LABEL_INSTANCE) != str(instance.pk):
        raise ContainerError("container_failed", stranger_message(instance.name))
    return info


def container_status(instance: ContainerInstance, *, with_logs: bool = True) -> ContainerStatus:
    """State, exit code, restarts and the last LOG_LINES lines of output of the instance's container."""
    status = ContainerStatus(name=instance.name)
    try:
        client = daemon_client()
    except ContainerError as error:
        status.problem = error.message
        return status
    try:
        info = _mine_by_name(client, instance)
        if info is None:
            return status
        state = info.get("State") or {}
        labels = labels_of(info)
        status.exists = True
        status.container_id = info["Id"]
        status.state = state.get("Status", "")
        status.exit_code = state.get("ExitCode")
        status.restart_count = info.get("RestartCount", 0)
        status.started_at = _when(state.get("StartedAt"))
        status.finished_at = _when(state.get("FinishedAt"))
        status.error = state.get("Error") or ""
        status.image_digest = labels.get(LABEL_DIGEST, "")
        try:
            wanted = build_spec(spec_values(instance), name=instance.name).settings_hash(instance.pull_reference)
            status.up_to_date = labels.get(LABEL_SETTINGS) == wanted
        except SpecErrors:
            status.up_to_date = None
        if with_logs:
            try:
                raw = client.logs(info["Id"], stdout=True, stderr=True, tail=LOG_LINES, timestamps=False)
                status.logs = raw.decode("utf-8", "replace")[-LOG_MAX_CHARS:]
            except docker.errors.APIError as exc:
                status.logs_error = f"No output to show: {str(exc.explanation or exc).strip()}."
    except ContainerError as error:
        status.problem = error.message
    except Exception as exc:
        status.problem = daemon_error(exc, "inspect the container").message
    finally:
        client.close()
    return status


def act(instance: ContainerInstance, action: str) -> str:
    """Start, stop or restart the instance's existing container. Returns a message; raises ContainerError."""
    if action not in ACTIONS:
        raise ContainerError("invalid", f"Unknown action {action!r}.")
    if action in ("start", "restart") and not instance.enabled:
        raise ContainerError(
            "disabled", f"{instance.name} is disabled: enable it (edit and save) to run its container."
        )
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

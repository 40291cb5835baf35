"""The container of an instance on the gateway's Docker daemon: Kura's lifecycle after the pull.

Enabled and saved: pull (tasks.pull_image), then :func:`finish_pull` creates
and starts a container named after the instance with its settings
(:mod:`orchestrator.container_settings`). Disabled or deleted:
:func:`converge_instance` stops and removes it; the image stays.

Every container the console makes carries labels, and recreation decisions
read them rather than guess:

* ``io.console.instance``: the instance's primary key (finds the container
  again after a rename or a delete);
* ``io.console.settings-hash``: a fingerprint of image reference + settings;
* ``io.console.image-digest``: the registry digest the container was made from.

"Pull again" on a mutable tag: the daemon asks the registry for the tag's
current digest and downloads only what changed; the container is recreated only
when the image it runs (its image ID) is not the one the tag now names, or its
settings changed. Otherwise it is left running (or started, if it was stopped).

Job states (a decision): a pull job with a container phase stays ``running``
(so the status page keeps polling) through pulled -> created -> running, and
ends ``succeeded`` only when the container runs, or ran and exited with code 0,
or when no container is wanted because the instance was disabled meanwhile. A
failed pull fails the job as before; a container that cannot be created or
started, or an image that does not match the required digest, fails the job
with ``container_failed`` / ``digest_mismatch`` (``daemon_unreachable`` when the
daemon is gone), and ``container_error`` says why.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors
from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from registries.daemon import open_client
from registries.errors import PullError, classify_exception

from .container_settings import SpecErrors, build_spec, spec_values
from .models import ContainerInstance, PullJob

log = logging.getLogger(__name__)

LABEL_INSTANCE = "io.console.instance"
LABEL_SETTINGS = "io.console.settings-hash"
LABEL_DIGEST = "io.console.image-digest"
# Seconds a container gets to stop after SIGTERM before Docker kills it (Docker's own default).
STOP_TIMEOUT = 10
# A container that exits within this many seconds of starting did not really start.
SETTLE_SECONDS = 1.0
LOG_LINES = 200
LOG_MAX_CHARS = 64 * 1024
ACTIONS = ("start", "stop", "restart")


class ContainerError(Exception):
    """The container phase failed; ``code`` is one of the job error codes, ``message`` says what to do."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass
class Outcome:
    state: str  # "running" or "exited" (with code 0)
    container_id: str
    message: str


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


# --------------------------------------------------------------------------- talking to the daemon


def _client() -> docker.APIClient:
    try:
        return open_client(settings.DOCKER_HOST)
    except PullError as error:
        raise ContainerError(error.code, error.message) from None


def _daemon_error(exc: Exception, doing: str) -> ContainerError:
    """A Docker SDK exception -> ContainerError with the daemon's own words."""
    if isinstance(exc, ContainerError):
        return exc
    if isinstance(exc, docker.errors.APIError):
        explanation = str(exc.explanation or exc).strip()
        return ContainerError("container_failed", f"The Docker daemon could not {doing}: {explanation}")
    error = classify_exception(exc, "", settings.DOCKER_HOST)
    return ContainerError(error.code, error.message)


def _call(doing: str, function: Callable, *args, **kwargs) -> Any:
    try:
        return function(*args, **kwargs)
    except Exception as exc:
        raise _daemon_error(exc, doing) from None


def _labelled(client: docker.APIClient, instance_id: int) -> list[dict]:
    """Containers (running or not) this console made for the instance."""
    return _call("list containers", client.containers, all=True, filters={"label": f"{LABEL_INSTANCE}={instance_id}"})


def _by_name(client: docker.APIClient, name: str) -> dict | None:
    try:
        return client.inspect_container(name)
    except docker.errors.NotFound:
        return None
    except Exception as exc:
        raise _daemon_error(exc, f"look up the container {name}") from None


def _labels(info: dict | None) -> dict:
    """A container's labels (inspect output); {} when it has none."""
    return ((info or {}).get("Config") or {}).get("Labels") or {}


def _name_of(summary: dict) -> str:
    names = summary.get("Names") or [""]
    return names[0].lstrip("/")


def _stop_and_remove(client: docker.APIClient, container_id: str) -> None:
    try:
        client.stop(container_id, timeout=STOP_TIMEOUT)
        client.remove_container(container_id, force=True)
    except docker.errors.NotFound:
        return
    except Exception as exc:
        raise _daemon_error(exc, "stop and remove the old container") from None


def _stranger_message(name: str) -> str:
    return (
        f"A container named {name} already exists on the gateway and was not made by this console, so it was left "
        f"alone. Rename the instance, or remove that container (docker rm -f {name}) and pull again."
    )


def _repo_digests(image: dict) -> set[str]:
    return {entry.split("@", 1)[1] for entry in image.get("RepoDigests") or [] if "@" in entry}


def _bridge_missing(client: docker.APIClient) -> bool:
    try:
        return not any(network.get("Name") == "bridge" for network in client.networks(names=["bridge"]))
    except Exception:  # only a hint; never fail the phase for it
        return False


def _settle(client: docker.APIClient, container_id: str) -> dict:
    """Inspect the container until it has run for SETTLE_SECONDS, or stopped (or restarts) before that."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        info = _call("inspect the container", client.inspect_container, container_id)
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


# --------------------------------------------------------------------------- the lifecycle


def ensure_running(
    instance: ContainerInstance,
    reference: str,
    digest: str,
    progress: Callable[..., None] = lambda **fields: None,
) -> Outcome:
    """Make the instance's container run ``reference`` with the instance's settings; recreate only if needed."""
    try:
        spec = build_spec(spec_values(instance), name=instance.name)
    except SpecErrors as errors:
        raise ContainerError(
            "container_failed", f"The container settings are invalid ({errors}). Edit the instance to fix them."
        ) from None
    client = _client()
    try:
        return _ensure_running(client, instance, reference, digest, spec, progress)
    finally:
        client.close()


def _ensure_running(client, instance, reference, digest, spec, progress) -> Outcome:
    name = instance.name
    image = _call(f"find the pulled image {reference}", client.inspect_image, reference)
    image_id = image["Id"]
    digests = _repo_digests(image) | ({digest} if digest else set())
    if not digest and digests:
        digest = sorted(digests)[0]

    mine = _labelled(client, instance.pk)
    # Containers made for this instance under an earlier name go first.
    for summary in mine:
        if _name_of(summary) != name:
            log.info("removing container %s of instance %s (renamed to %s)", _name_of(summary), instance.pk, name)
            _stop_and_remove(client, summary["Id"])
    current = _by_name(client, name)
    owner = _labels(current).get(LABEL_INSTANCE)
    if current is not None and owner != str(instance.pk):
        if owner and owner.isdigit() and not ContainerInstance.objects.filter(pk=int(owner)).exists():
            # Left behind by a deleted instance (say the task queue was down): ours to replace.
            log.info("removing container %s of deleted instance %s", name, owner)
            _stop_and_remove(client, current["Id"])
            current = None
        elif owner:
            raise ContainerError(
                "container_failed",
                f"A container named {name} still belongs to another instance of this console (renamed since). Pull "
                f"that instance again to clean it up, or remove the container (docker rm -f {name}).",
            )
        else:
            raise ContainerError("container_failed", _stranger_message(name))

    pin = instance.digest_pin
    if pin and pin not in digests:
        note = ""
        if current is not None and _labels(current).get(LABEL_DIGEST) != pin:
            _stop_and_remove(client, current["Id"])
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
        labels = _labels(current)
        same_settings = labels.get(LABEL_SETTINGS) == wanted
        same_image = current.get("Image") == image_id
        if same_settings and same_image:
            state = current.get("State") or {}
            if state.get("Running") and not state.get("Restarting"):
                return Outcome("running", current["Id"], f"Container {name} is up to date and running.")
            _call(f"start the container {name}", client.start, current["Id"])
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
        _stop_and_remove(client, current["Id"])

    kwargs = spec.create_kwargs()
    host_config = _call("check the container settings", client.create_host_config, **kwargs["host_config"])
    labels = {LABEL_INSTANCE: str(instance.pk), LABEL_SETTINGS: wanted, LABEL_DIGEST: digest or ""}
    created = _call(
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
    _call(f"start the container {name}", client.start, container_id)
    outcome = _started(client, container_id, name, what)
    if spec.network_mode in (None, "bridge") and _bridge_missing(client):
        outcome.message += (
            " Note: this Docker daemon has no bridge network, so the container has no network at all; set the "
            "network mode to host or none to say which you mean."
        )
    return outcome


def remove_instance_containers(instance_id: int) -> list[str]:
    """Stop and remove every container this console made for the instance. Returns their names."""
    client = _client()
    try:
        removed = []
        for summary in _labelled(client, instance_id):
            _stop_and_remove(client, summary["Id"])
            removed.append(_name_of(summary))
        return removed
    finally:
        client.close()


# --------------------------------------------------------------------------- the pull job's container phase


class _JobRow:
    """Writes to the job, fenced like the pull's own: only while it is running under the worker that pulled."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.holder = PullJob.objects.filter(pk=job_id).values_list("worker", flat=True).first()
        self.lost = False

    def update(self, **fields) -> bool:
        if self.lost:
            return False
        rows = PullJob.objects.filter(pk=self.job_id, state=PullJob.State.RUNNING, worker=self.holder)
        self.lost = not rows.update(heartbeat_at=timezone.now(), **fields)
        return not self.lost

    def end(self, state: str, **fields) -> bool:
        return self.update(state=state, finished_at=timezone.now(), **fields)


def finish_pull(job_id: int, pulled: dict[str, Any]) -> str:
    """Record a successful pull (``pulled``: the job fields it sets), then run the container phase and end the job.

    Returns the task's result word: succeeded, failed, cancelled, or lost (another worker holds the job now).
    """
    row = _JobRow(job_id)
    if not row.update(container_state=PullJob.ContainerState.PULLED, **pulled):
        return "lost"
    job = PullJob.objects.select_related("instance").filter(pk=job_id).first()
    if job is None:  # the instance (and with it the job) was deleted during the pull
        return "succeeded"
    instance = job.instance
    pulled_message = pulled.get("message", "")
    if not instance.enabled:
        try:
            remove_instance_containers(instance.pk)
        except ContainerError as error:
            log.warning("pull job %s: could not remove the container of disabled instance: %s", job_id, error.code)
        row.end(
            PullJob.State.SUCCEEDED,
            message=f"{pulled_message}. The instance is disabled, so no container runs.".lstrip(". "),
        )
        return "succeeded"
    if job.cancel_requested:
        row.end(PullJob.State.CANCELLED, message="Cancelled after the pull; the container was left as it was.")
        return "cancelled"

    def progress(**fields) -> None:
        row.update(**fields)

    try:
        outcome = ensure_running(instance, job.reference, pulled.get("digest") or "", progress)
    except ContainerError as error:
        log.info("pull job %s: container phase failed: %s", job_id, error.code)
        row.end(
            PullJob.State.FAILED,
            container_state=PullJob.ContainerState.FAILED,
            container_error=error.message,
            error_code=error.code,
            error_message=error.message,
            message=f"{pulled_message}. The container did not start.".lstrip(". "),
        )
        return "lost" if row.lost else "failed"
    log.info("pull job %s: container %s %s", job_id, outcome.container_id[:12], outcome.state)
    if not ContainerInstance.objects.filter(pk=instance.pk, enabled=True).exists():
        # Disabled or deleted while the container was being made: its converge_instance may have run already.
        try:
            remove_instance_containers(instance.pk)
        except ContainerError as error:
            log.warning("pull job %s: could not remove the container of disabled instance: %s", job_id, error.code)
        row.end(
            PullJob.State.SUCCEEDED,
            container_state=PullJob.ContainerState.PULLED,
            container_id="",
            message=f"{pulled_message}. The instance was disabled meanwhile, so its container was removed.".lstrip(
                ". "
            ),
        )
        return "lost" if row.lost else "succeeded"
    row.end(
        PullJob.State.SUCCEEDED,
        container_state=outcome.state,
        container_id=outcome.container_id,
        container_error="",
        message=f"{pulled_message}. {outcome.message}".lstrip(". ")[:500],
    )
    return "lost" if row.lost else "succeeded"


# --------------------------------------------------------------------------- disable / delete


@shared_task(name="orchestrator.converge_instance", bind=True, acks_late=True, ignore_result=True, max_retries=20)
def converge_instance(self, instance_id: int) -> str:
    """After a disable or a delete: stop and remove the instance's container. Enabled instances converge on pull."""
    instance = ContainerInstance.objects.filter(pk=instance_id).first()
    if instance is not None and instance.enabled:
        return "enabled"
    try:
        removed = remove_instance_containers(instance_id)
    except ContainerError as error:
        if error.code == "daemon_unreachable":
            raise self.retry(countdown=15) from None
        log.warning("instance %s: could not remove its container: %s", instance_id, error.message)
        return "failed"
    log.info("instance %s: removed containers %s", instance_id, removed)
    return f"removed {len(removed)}"


def request_converge(instance_id: int) -> None:
    """Send converge_instance once the current transaction commits (only the id travels)."""
    transaction.on_commit(lambda: _send_converge(instance_id))


def _send_converge(instance_id: int) -> bool:
    try:
        converge_instance.apply_async((instance_id,), queue=settings.CELERY_PULL_QUEUE, retry=False)
    except Exception as exc:  # the broker being down must not fail the save or the delete
        log.warning(
            "task queue unavailable; the container of instance %s stays until it is removed by hand: %s",
            instance_id,
            type(exc).__name__,
        )
        return False
    return True


# --------------------------------------------------------------------------- the instance page


def _mine_by_name(client: docker.APIClient, instance: ContainerInstance) -> dict | None:
    info = _by_name(client, instance.name)
    if info is None:
        return None
    if _labels(info).get(LABEL_INSTANCE) != str(instance.pk):
        raise ContainerError("container_failed", _stranger_message(instance.name))
    return info


def container_status(instance: ContainerInstance, *, with_logs: bool = True) -> ContainerStatus:
    """State, exit code, restarts and the last LOG_LINES lines of output of the instance's container."""
    status = ContainerStatus(name=instance.name)
    try:
        client = _client()
    except ContainerError as error:
        status.problem = error.message
        return status
    try:
        info = _mine_by_name(client, instance)
        if info is None:
            return status
        state = info.get("State") or {}
        labels = _labels(info)
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
            wanted = build_spec(spec_values(instance), name=instance.name).settings_hash(_reference(instance))
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
        status.problem = _daemon_error(exc, "inspect the container").message
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
    client = _client()
    try:
        info = _mine_by_name(client, instance)
        if info is None:
            raise ContainerError(
                "no_container", f"There is no container for {instance.name} yet: use Pull again to create it."
            )
        if action == "start":
            _call(f"start {instance.name}", client.start, info["Id"])
        elif action == "stop":
            _call(f"stop {instance.name}", client.stop, info["Id"], timeout=STOP_TIMEOUT)
        else:
            _call(f"restart {instance.name}", client.restart, info["Id"], timeout=STOP_TIMEOUT)
    finally:
        client.close()
    past = {"start": "Started", "stop": "Stopped", "restart": "Restarted"}[action]
    return f"{past} the container {instance.name}."


def _reference(instance: ContainerInstance) -> str:
    from .jobs import normalized_reference

    return normalized_reference(instance)


def _when(value: str | None) -> str:
    """Docker's RFC 3339 time, or '' for its zero time."""
    if not value or value.startswith("0001-"):
        return ""
    return value[:19].replace("T", " ") + " UTC"

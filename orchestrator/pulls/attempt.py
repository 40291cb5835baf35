"""One pull attempt through the Docker daemon, with progress, a deadline and cancellation.

Uses the Docker SDK's low-level client and the Engine API's streaming
``POST /images/create``. The SDK's ``APIClient.pull`` hides the HTTP response,
and with it any way to stop a pull that has stalled; this module makes the same
request through the SDK's request helpers so a watchdog thread can cut the
connection when the attempt's deadline passes or the user cancels. Closing the
connection makes the daemon abandon the pull (its request context ends).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import docker
import docker.auth
from django.views.decorators.debug import sensitive_variables

from registries.errors import PullError, classify, classify_exception, daemon_lost, registry_broke_off, scrub
from registries.reference import ReferenceError, parse_normalized

from .progress import ProgressFolder, Snapshot

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10
# How often the watchdog looks at the deadline and the cancel flag.
WATCHDOG_PERIOD = 0.5


@dataclass
class PullOutcome:
    snapshot: Snapshot
    digest: str | None
    platform: str | None
    up_to_date: bool


@sensitive_variables("auth_config", "headers", "secrets")
def pull_once(
    client: docker.APIClient,
    reference: str,
    *,
    auth_config: dict | None,
    deadline: float,
    on_progress: Callable[[Callable[[], Snapshot]], None],
    should_cancel: Callable[[], bool],
    docker_host: str,
    secrets: tuple[str, ...] = (),
    platform: str | None = None,
) -> PullOutcome:
    """Pull ``reference`` once. Raises PullError (code timeout/cancelled/...) on failure."""
    try:
        parsed = parse_normalized(reference)
    except ReferenceError as exc:
        raise PullError("invalid_reference", f"{reference} cannot be pulled: {exc}") from None
    # The Engine API takes a digest in its "tag" parameter too.
    repository, tag = parsed.name, parsed.digest or parsed.tag or "latest"
    headers = {}
    if auth_config:
        headers["X-Registry-Auth"] = docker.auth.encode_header(auth_config)
    params = {"fromImage": repository, "tag": tag}
    if platform:
        params["platform"] = platform
    remaining = max(1.0, deadline - time.monotonic())
    response = _start(client, params, headers, remaining, deadline, should_cancel, reference, docker_host, secrets)

    stop = threading.Event()
    # Why the watchdog (or the stream loop) cut the connection: "timeout", "cancelled" or "registry".
    why: list[str] = []

    def watchdog() -> None:
        while not stop.wait(WATCHDOG_PERIOD):
            if time.monotonic() >= deadline:
                why.append("timeout")
            elif should_cancel():
                why.append("cancelled")
            if why:
                _cut(response)
                return

    guard = threading.Thread(target=watchdog, name="pull-watchdog", daemon=True)
    guard.start()
    folder = ProgressFolder()
    finished = False
    broken_layer = ""
    try:
        for event in client._stream_helper(response, decode=True):
            if event.get("errorDetail") or event.get("error"):
                detail = event.get("errorDetail") or {}
                text = str(detail.get("message") or event.get("error") or "unknown error")
                error = classify(text, reference)
                if error.code == "unknown" and not _daemon_answers(client):
                    # e.g. "context canceled" from a daemon that is shutting down
                    error = daemon_lost(reference, docker_host, text)
                raise _scrubbed(error, secrets)
            status = str(event.get("status") or "")
            if status.startswith("Retrying in"):
                # The daemon lost the registry mid-layer and would retry on its own schedule (5, 10, 15 s...).
                # End the attempt instead, so the instance's retry count and interval decide what happens next.
                broken_layer = str(event.get("id") or "?")
                why.append("registry")
                _cut(response)
                break
            if status.startswith("Status:"):
                # "Status: Downloaded newer image for ..." / "Status: Image is up to date for ...": the last line.
                finished = True
            folder.feed(event)
            # The writer builds a snapshot only when a write is due (a few per second), not per event.
            on_progress(folder.snapshot)
    except PullError:
        raise
    except Exception as exc:
        if why:
            raise _stopped(why[0], reference, broken_layer) from None
        if not _daemon_answers(client):
            raise daemon_lost(reference, docker_host, f"{type(exc).__name__}") from None
        raise _scrubbed(classify_exception(exc, reference, docker_host), secrets) from None
    finally:
        stop.set()
        guard.join(timeout=5)
        response.close()
    if why:
        # The cut can also look like a clean end of stream.
        raise _stopped(why[0], reference, broken_layer)
    if not finished:
        # A stream that stops without its final status line is not a pull that worked.
        if not _daemon_answers(client):
            raise daemon_lost(reference, docker_host, "the connection closed in the middle of the pull")
        raise PullError(
            "unknown",
            f"The Docker daemon ended the pull of {reference} without saying it had finished. Pull again; if it "
            "keeps happening, look at the daemon's log.",
        )
    folder.finish()
    snapshot = folder.snapshot()
    pulled_platform, repo_digest = _inspect(client, reference)
    return PullOutcome(
        snapshot=snapshot, digest=folder.digest or repo_digest, platform=pulled_platform, up_to_date=folder.up_to_date
    )


def _start(client, params, headers, read_timeout, deadline, should_cancel, reference, docker_host, secrets):
    """POST /images/create and wait for the daemon's first answer, watching the deadline and the cancel flag.

    The daemon answers only once it has asked the registry for the manifest,
    which can take long with a slow or silent registry. The request runs in a
    helper thread so a cancel need not wait for it; an answer that arrives after
    we gave up is closed at once, which makes the daemon drop the pull.
    """
    done = threading.Event()
    abandoned = threading.Event()
    box: dict = {}

    def post() -> None:
        try:
            response = client._post(
                client._url("/images/create"),
                params=params,
                headers=headers,
                stream=True,
                timeout=(CONNECT_TIMEOUT, read_timeout),
            )
            try:
                client._raise_for_status(response)
            except Exception:
                response.close()
                raise
            box["response"] = response
        except Exception as exc:  # noqa: BLE001 - handed to the waiting thread
            box["error"] = exc
        finally:
            done.set()
            if abandoned.is_set() and "response" in box:
                box["response"].close()

    threading.Thread(target=post, name="pull-request", daemon=True).start()
    while not done.wait(WATCHDOG_PERIOD):
        reason = "timeout" if time.monotonic() >= deadline else "cancelled" if should_cancel() else None
        if reason is not None:
            abandoned.set()
            if done.is_set() and "response" in box:  # it arrived just now
                box["response"].close()
            raise _stopped(reason, reference)
    if "error" in box:
        raise _scrubbed(classify_exception(box["error"], reference, docker_host), secrets) from None
    return box["response"]


def _daemon_answers(client: docker.APIClient) -> bool:
    """A quick /_ping: tells a daemon that went away from a pull that failed for another reason."""
    try:
        response = client._get(client._url("/_ping"), timeout=(3, 3))
        return response.status_code == 200
    except Exception:  # noqa: BLE001 - any failure to answer means it is not there
        return False


def _stopped(reason: str, reference: str, layer: str = "") -> PullError:
    if reason == "cancelled":
        return PullError("cancelled", f"The pull of {reference} was cancelled.")
    if reason == "registry":
        return registry_broke_off(reference, layer)
    return PullError(
        "timeout",
        f"The download of {reference} took longer than the Image Download Timeout allows. Raise the timeout "
        "for big images or slow links.",
    )


def _scrubbed(error: PullError, secrets: tuple[str, ...]) -> PullError:
    return PullError(error.code, scrub(error.message, secrets))


def _cut(response) -> None:
    """Shut the pull's socket down from another thread: the blocked read returns at once."""
    try:
        sock = response.raw.connection.sock
        sock.shutdown(socket.SHUT_RDWR)
    except (AttributeError, OSError):
        response.close()


def _inspect(client: docker.APIClient, reference: str) -> tuple[str | None, str | None]:
    """The platform and repo digest of the image the daemon now has."""
    try:
        info = client.inspect_image(reference)
    except Exception:  # the pull succeeded; missing details must not fail it
        log.warning("pulled %s but could not inspect it", reference)
        return None, None
    platform = "/".join(part for part in (info.get("Os"), info.get("Architecture"), info.get("Variant")) if part)
    repo_digests = info.get("RepoDigests") or []
    digest = repo_digests[0].split("@", 1)[1] if repo_digests else None
    return platform or None, digest

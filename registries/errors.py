"""Map what the Docker daemon (or the way to it) says into the project's error codes.

Daemon errors arrive two ways: as an exception from ``pull()`` before the stream
starts, or as an ``errorDetail`` event inside the stream. Both end up here as
text, and every message we build says what to do next and never holds a secret.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

import docker.errors
import requests.exceptions

from .reference import registry_of

# Codes worth another attempt: the same request may work a little later.
RETRYABLE = {"registry_unreachable", "daemon_unreachable", "rate_limited", "timeout", "unknown"}


@dataclass
class PullError(Exception):
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE


_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s:]+:[^/@\s]+@", re.IGNORECASE)


def scrub(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Remove secrets (and their base64 spellings) and URL credentials from a text."""
    for secret in secrets:
        if not secret or len(secret) < 4:
            continue
        spellings = {secret, base64.b64encode(secret.encode()).decode()}
        for spelling in spellings:
            text = text.replace(spelling, "********")
    return _URL_CREDENTIALS.sub(r"\g<scheme>********@", text)


def classify(text: str, reference: str) -> PullError:
    """Turn a daemon error text into a PullError with advice."""
    lowered = text.lower()
    host = registry_of(reference)
    if "toomanyrequests" in lowered or "too many requests" in lowered or "rate limit" in lowered:
        return PullError(
            "rate_limited",
            f"{host} refused the pull: too many requests (toomanyrequests). Docker Hub limits anonymous pulls "
            "per IP address, and pulls made with an account's credentials have a higher limit: set the "
            "Authentication Username and an access token as Password, or wait and pull again.",
        )
    if (
        "unauthorized" in lowered
        or "authentication required" in lowered
        or "no basic auth credentials" in lowered
        or "incorrect username or password" in lowered
        or "denied: your authorization token has expired" in lowered
    ):
        if "expired" in lowered:
            return PullError(
                "token_expired",
                f"{host} says the registry password has expired. For AWS ECR, make a new one with "
                "`aws ecr get-login-password` or let the console generate it from AWS credentials.",
            )
        return PullError(
            "auth_failed",
            f"{host} refused the username or password. Check the Authentication Username and Password fields "
            "(for Docker Hub, use an access token; for AWS ECR, the username is AWS).",
        )
    if "manifest unknown" in lowered or ("manifest for" in lowered and "not found" in lowered):
        return PullError(
            "not_found",
            f"{reference} does not exist: the registry has no such tag. Check the Image Tag field.",
        )
    if "pull access denied" in lowered or "repository does not exist" in lowered or "name unknown" in lowered:
        return PullError(
            "not_found",
            f"{host} has no repository for {reference}, or it is private and needs credentials. Check the "
            "Image Name and, for a private repository, the username and password.",
        )
    if "no matching manifest" in lowered:
        return PullError(
            "not_found",
            f"{reference} has no variant for this gateway's platform. Pick a tag built for it.",
        )
    if any(
        marker in lowered
        for marker in (
            "connection refused",
            "no such host",
            "i/o timeout",
            "dial tcp",
            "connection reset",
            "broken pipe",
            "no route to host",
            "tls handshake",
            "unexpected eof",
            "context deadline exceeded",
            "client.timeout exceeded",
            "server misbehaving",
            "network is unreachable",
            "503 service unavailable",
            "502 bad gateway",
            "x509:",
        )
    ) or _ends_in_eof(lowered):
        return PullError(
            "registry_unreachable",
            f"The Docker daemon could not reach the registry {host}: {_short(text)}. Check the address, "
            "the gateway's network and DNS, and that the registry is up.",
        )
    if "invalid reference format" in lowered:
        return PullError("invalid_reference", f"The Docker daemon refused the reference {reference}: {_short(text)}")
    return PullError("unknown", f"The pull of {reference} failed: {_short(text)}")


def _ends_in_eof(lowered: str) -> bool:
    # Go's io.EOF: the registry (or something in front of it) closed the connection without an answer,
    # e.g. 'Get "http://10.0.0.5:5000/v2/": EOF'.
    return lowered.rstrip().endswith(": eof")


def registry_broke_off(reference: str, layer: str) -> PullError:
    """The daemon lost the registry in the middle of a layer download (it announced a retry)."""
    host = registry_of(reference)
    return PullError(
        "registry_unreachable",
        f"The connection to the registry {host} broke off while the Docker daemon was downloading layer "
        f"{layer}. Check the gateway's network and that the registry is up; the pull is tried again as the "
        "download retry settings say.",
    )


def daemon_lost(reference: str, docker_host: str, detail: str = "") -> PullError:
    """The daemon went away (stopped or restarting) while it was pulling."""
    because = f" ({_short(detail)})" if detail else ""
    return PullError(
        "daemon_unreachable",
        f"The Docker daemon at {docker_host} stopped answering while it was pulling {reference}{because}. "
        "Check that Docker is running on the gateway; the pull is tried again as the download retry settings say.",
    )


def classify_exception(exc: BaseException, reference: str, docker_host: str) -> PullError:
    """Map an exception raised by the Docker SDK (before or during the stream)."""
    if isinstance(exc, PullError):
        return exc
    if isinstance(exc, docker.errors.APIError):
        error = classify(str(exc.explanation or exc), reference)
        if error.code == "unknown" and exc.status_code == 404:
            return PullError("not_found", f"{reference} was not found by the registry. Check the image name and tag.")
        if error.code == "unknown" and exc.status_code == 401:
            return classify("unauthorized", reference)
        return error
    if isinstance(exc, (requests.exceptions.ReadTimeout,)):
        return PullError(
            "timeout",
            f"The Docker daemon at {docker_host} sent nothing for too long while pulling {reference}.",
        )
    if isinstance(exc, (requests.exceptions.ConnectionError, docker.errors.DockerException, ConnectionError, OSError)):
        return PullError(
            "daemon_unreachable",
            f"The Docker daemon at {docker_host} cannot be reached ({_short(str(exc))}). Check that Docker is "
            "running on the gateway and that the worker may use its socket.",
        )
    return PullError(
        "unknown", f"The pull of {reference} failed unexpectedly: {type(exc).__name__}: {_short(str(exc))}"
    )


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"

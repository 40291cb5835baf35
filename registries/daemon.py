"""Connecting to the Docker daemon the way the CLI does."""

from __future__ import annotations

import os

import docker
import docker.utils

from .errors import classify_exception


def open_client(docker_host: str, timeout: float = 60) -> docker.APIClient:
    """A low-level client for DOCKER_HOST, honouring DOCKER_TLS_VERIFY/DOCKER_CERT_PATH.

    Raises PullError(daemon_unreachable) when the daemon does not answer: the SDK
    asks it for its API version right away.
    """
    environment = {**os.environ, "DOCKER_HOST": docker_host}
    kwargs = docker.utils.kwargs_from_env(environment=environment)
    try:
        return docker.APIClient(timeout=timeout, version="auto", **kwargs)
    except Exception as exc:
        raise classify_exception(exc, "", docker_host) from None

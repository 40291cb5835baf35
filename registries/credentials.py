"""Turn the registry fields of a form or instance into a Docker ``auth_config``.

Takes plain values, not a model, so ``registries`` stays independent of the app
that stores them.
"""

from __future__ import annotations

from urllib.parse import urlsplit

# The key the Docker CLI and daemon use for Docker Hub credentials.
DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"
_HUB_ALIASES = {"", "docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


def registry_host(registry_url: str) -> str:
    """'https://host:5000/team/' -> 'host:5000'; blank or a Docker Hub alias -> 'docker.io'."""
    text = (registry_url or "").strip()
    if "://" not in text:
        text = "//" + text
    host = urlsplit(text).netloc.rsplit("@", 1)[-1].lower()
    return "docker.io" if host in _HUB_ALIASES else host


def auth_config(registry_url: str, username: str, password: str) -> dict | None:
    """The ``auth_config`` for the Docker SDK, or None for an anonymous pull."""
    if not username and not password:
        return None
    host = registry_host(registry_url)
    return {
        "username": username,
        "password": str(password),
        "serveraddress": DOCKER_HUB_AUTH_KEY if host == "docker.io" else host,
    }

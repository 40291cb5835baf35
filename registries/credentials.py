"""Turn the registry fields of a form or instance into a Docker ``auth_config``.

Takes plain values, not a model, so ``registries`` stays independent of the app
that stores them.

``login_host`` is the one rule for which registry a password belongs to: the
host of the Registry URL when there is one, else the registry of the image
name; lowercase, port kept (the daemon keeps it too), and every Docker Hub
alias folded to ``docker.io``.
"""

from __future__ import annotations

import re

from registries.reference import DEFAULT_DOMAIN, normalize_host, registry_of

# The key the Docker CLI and daemon use for Docker Hub credentials.
DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def _url_host(registry_url: str) -> str:
    # By hand rather than urlsplit, which raises on a malformed '[' host: this must never raise.
    text = (registry_url or "").strip()
    if scheme := _SCHEME.match(text):
        text = text[scheme.end() :]
    authority = re.split(r"[/?#]", text, maxsplit=1)[0]
    return authority.rsplit("@", 1)[-1]


def login_host(image_name: str, registry_url: str) -> str:
    """The host[:port] the credentials for this image and Registry URL are sent to.

    ``login_host("user/app", "https://Host:5000/team/")`` is ``host:5000``;
    ``login_host("user/app", "")`` and ``login_host("", "registry.hub.docker.com")`` are ``docker.io``.

    The Registry URL's host wins when given; otherwise the image's registry, read with the
    reference grammar (best effort for a name it refuses, so this never raises).
    """
    host = _url_host(registry_url) or registry_of((image_name or "").strip())
    return normalize_host(host) or DEFAULT_DOMAIN


def auth_config(registry_url: str, username: str, password: str, *, image_name: str = "") -> dict | None:
    """The ``auth_config`` for the Docker SDK, or None for an anonymous pull.

    ``image_name`` matters only when the Registry URL is blank; with neither, it is Docker Hub's login.
    """
    if not username and not password:
        return None
    host = login_host(image_name, registry_url)
    return {
        "username": username,
        "password": str(password),
        "serveraddress": DOCKER_HUB_AUTH_KEY if host == DEFAULT_DOMAIN else host,
    }

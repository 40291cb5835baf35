"""Host access: what in a container's settings reaches the gateway itself, who may give it, and where it stops.

Kura lets every user set privileged mode, devices and host paths because Kura
has one administrator. Here an operator must not be able to take the gateway
over, so these need the ``host_access`` permission (administrators):

* privileged mode; devices; bind mounts of host paths (named volumes are fine);
* network mode ``host`` or ``container:...``; another runtime;
* log drivers that send the output to a network address (syslog, gelf,
  fluentd, awslogs, splunk, gcplogs, and loki with an address option).

Even with it, host paths and devices must match ``CONSOLE_ALLOWED_HOST_PATHS``
and ``CONSOLE_ALLOWED_DEVICES``, and some paths are refused always, after
normalizing (``..``, ``//``, a trailing ``/``): ``/``, ``/etc``, ``/proc``,
``/sys``, ``/boot``, ``/run``, ``/var/run`` (and what is under them, the Docker
socket included), ``/dev`` as a whole, and the Docker data root. Pure: no
Django models, no Docker.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from orchestrator.containers.spec import ContainerSpec

# Kura logger types whose driver sends the output off the gateway.
NETWORK_LOGGERS = frozenset({"SYSLOG", "GELF", "FLUENTD", "AWSLOGS", "SPLUNK", "GCPLOGS"})
# Loki needs a URL; any option naming an address sends the output there.
_ADDRESS_OPTION = re.compile(r"url|address|endpoint|host", re.IGNORECASE)
# Refused with everything under them.
DENIED_TREES = ("/etc", "/proc", "/sys", "/boot", "/run", "/var/run")
# Refused themselves (what is under them may be allowed).
DENIED_EXACT = ("/", "/dev")


def normalize(path: str) -> str:
    """'/srv//app/../data/' -> '/srv/data'. POSIX keeps a leading '//', which means '/' on Linux: fold it."""
    return posixpath.normpath("/" + path.strip().lstrip("/"))


def _under(path: str, tree: str) -> bool:
    return path == tree or path.startswith(tree.rstrip("/") + "/")


@dataclass(frozen=True)
class Policy:
    allowed_paths: tuple[str, ...]
    allowed_devices: tuple[str, ...]
    docker_root: str = "/var/lib/docker"

    def never(self, path: str) -> bool:
        """True for the paths no one may give a container, whatever the allowlists say."""
        trees = (*DENIED_TREES, normalize(self.docker_root))
        return path in DENIED_EXACT or any(_under(path, tree) for tree in trees)


def uses(spec: ContainerSpec) -> dict[str, set[str]]:
    """What in ``spec`` reaches the host, by form field; empty when nothing does."""
    found: dict[str, set[str]] = {}
    if spec.privileged:
        found["privileged"] = {"privileged mode"}
    if spec.devices:
        found["devices"] = {device.split(":", 1)[0] for device in spec.devices}
    host_paths = {bind.split(":", 1)[0] for bind in spec.binds if bind.startswith("/")}
    if host_paths:
        found["volumes"] = host_paths
    if spec.network_mode == "host" or (spec.network_mode or "").startswith("container:"):
        found["network_mode"] = {spec.network_mode}
    if spec.runtime:
        found["runtime"] = {spec.runtime}
    if spec.logger_type in NETWORK_LOGGERS or (
        spec.logger_type == "LOKI" and any(_ADDRESS_OPTION.search(name) for name in spec.logger_parameters)
    ):
        found["logger_type"] = {spec.logger_type}
    return found


_NEEDS = {
    "privileged": "Privileged mode gives the container the whole gateway",
    "devices": "Passing gateway devices ({items})",
    "volumes": "Mounting gateway paths ({items})",
    "network_mode": "The network mode {items} gives the container the gateway's network or another container's",
    "runtime": "Another runtime ({items})",
    "logger_type": "The {items} logger sends the container's output off the gateway",
}


def refusals_without_permission(new: ContainerSpec, old: ContainerSpec | None) -> dict[str, str]:
    """For a user without host access: each field that adds host access to what ``old`` already had."""
    before = uses(old) if old is not None else {}
    errors = {}
    for field, items in uses(new).items():
        added = items - before.get(field, set())
        if added:
            what = _NEEDS[field].format(items=", ".join(sorted(added)))
            errors[field] = f"{what}: only an administrator (the host access permission) may set this."
    return errors


def refusals_outside_policy(spec: ContainerSpec, policy: Policy) -> dict[str, list[str]]:
    """For everyone: host paths and devices outside the allowlists, and the paths refused always."""
    errors: dict[str, list[str]] = {}
    sources = (bind.split(":", 1)[0] for bind in spec.binds if bind.startswith("/"))
    for message in _check(sources, policy, policy.allowed_paths, "CONSOLE_ALLOWED_HOST_PATHS", "mounted"):
        errors.setdefault("volumes", []).append(message)
    devices = (device.split(":", 1)[0] for device in spec.devices)
    for message in _check(devices, policy, policy.allowed_devices, "CONSOLE_ALLOWED_DEVICES", "passed to a container"):
        errors.setdefault("devices", []).append(message)
    return errors


def _check(paths: Iterable[str], policy: Policy, allowed: tuple[str, ...], setting: str, verb: str) -> list[str]:
    messages = []
    for written in paths:
        path = normalize(written)
        shown = written if path == written else f"{written} (that is {path})"
        if policy.never(path):
            messages.append(f"{shown} is never {verb}: it would give the container control of the gateway.")
        elif not any(fnmatchcase(path, pattern) for pattern in allowed):
            listed = ", ".join(allowed) or "nothing"
            messages.append(f"{shown} is outside what this console allows ({setting}: {listed}).")
    return messages

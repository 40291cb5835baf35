"""The whole container spec of an instance: every parser run on its fields, and the Docker create arguments.

:func:`build_spec` runs the parsers of :mod:`.parsers` (plus the checks that
involve two fields) and returns a :class:`ContainerSpec`, whose
:meth:`~ContainerSpec.create_kwargs` are the arguments of the Docker SDK's
``APIClient.create_container`` and ``create_host_config``. Pure: no Docker, no
Django. ``CONTAINER_SECTIONS`` is the one list of container fields, which the
form, the admin and the spec all read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .parsers import (
    DEFAULT_LOGGER,
    GPU_DRIVER,
    LOGGER_DRIVERS,
    RESTART_POLICY,
    Port,
    SettingError,
    pair_ports,
    parse_cpus,
    parse_devices,
    parse_entrypoint,
    parse_env,
    parse_external_ports,
    parse_gpus,
    parse_internal_ports,
    parse_logger_parameters,
    parse_logger_type,
    parse_memory,
    parse_network_mode,
    parse_runtime,
    parse_volumes,
)

# The container fields by the section of the form (and of the admin) they appear in.
CONTAINER_SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Command and environment", ("entrypoint", "env", "restart_on_failure")),
    ("Networking", ("network_mode", "internal_ports", "external_ports")),
    ("Resources", ("memory", "cpus", "gpus", "runtime")),
    ("Storage and devices", ("volumes", "devices", "privileged")),
    ("Logging", ("logger_type", "logger_parameters")),
)
SPEC_FIELDS: tuple[str, ...] = tuple(name for _, names in CONTAINER_SECTIONS for name in names)


class SpecErrors(ValueError):
    """Several fields are wrong: ``errors`` maps field name -> messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{name}: {' '.join(messages)}" for name, messages in errors.items()))


@dataclass(frozen=True)
class ContainerSpec:
    """Everything the daemon needs to create the container, parsed and checked."""

    ports: tuple[Port, ...] = ()
    port_bindings: dict[str, list[int]] = field(default_factory=dict)
    privileged: bool = False
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    memory: int | None = None
    nano_cpus: int | None = None
    gpus: int | None = None
    binds: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    runtime: str | None = None
    network_mode: str | None = None
    logger_type: str = DEFAULT_LOGGER
    logger_parameters: dict[str, str] = field(default_factory=dict)
    restart_on_failure: bool = False

    def create_kwargs(self) -> dict[str, dict[str, Any]]:
        """{'config': create_container kwargs, 'host_config': create_host_config kwargs}; JSON-serialisable."""
        config: dict[str, Any] = {}
        if self.ports:
            config["ports"] = [(port.number, port.protocol) for port in self.ports]
        if self.env:
            config["environment"] = list(self.env)
        if self.entrypoint:
            config["entrypoint"] = list(self.entrypoint)
        host: dict[str, Any] = {}
        if self.port_bindings:
            host["port_bindings"] = {key: list(value) for key, value in self.port_bindings.items()}
        if self.privileged:
            host["privileged"] = True
        if self.binds:
            host["binds"] = list(self.binds)
        if self.devices:
            host["devices"] = list(self.devices)
        if self.memory is not None:
            host["mem_limit"] = self.memory
        if self.nano_cpus is not None:
            host["nano_cpus"] = self.nano_cpus
        if self.gpus is not None:
            host["device_requests"] = [{"driver": GPU_DRIVER, "count": self.gpus, "capabilities": [["gpu"]]}]
        if self.runtime:
            host["runtime"] = self.runtime
        if self.network_mode:
            host["network_mode"] = self.network_mode
        driver = LOGGER_DRIVERS[self.logger_type]
        if driver or self.logger_parameters:
            host["log_config"] = {"type": driver, "config": dict(self.logger_parameters)}
        if self.restart_on_failure:
            host["restart_policy"] = {"Name": RESTART_POLICY}
        return {"config": config, "host_config": host}

    def settings_hash(self, image: str) -> str:
        """A fingerprint of image reference + settings: a container labelled with another one needs recreating."""
        text = json.dumps({"image": image, **self.create_kwargs()}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def build_spec(values: Mapping[str, Any], *, name: str = "") -> ContainerSpec:
    """Parse every container field of ``values`` (form data or an instance's attributes).

    Raises SpecErrors with a message per bad field; cross-field problems go on
    the field the user should change.
    """
    errors: dict[str, list[str]] = {}
    parsed: dict[str, Any] = {}

    def run(field_name: str, parser, *args) -> None:
        try:
            parsed[field_name] = parser(values.get(field_name), *args)
        except SettingError as error:
            errors.setdefault(field_name, []).append(str(error))

    run("internal_ports", parse_internal_ports)
    run("external_ports", parse_external_ports)
    run("env", parse_env)
    run("entrypoint", parse_entrypoint)
    run("memory", parse_memory)
    run("cpus", parse_cpus)
    run("gpus", parse_gpus)
    run("volumes", parse_volumes)
    run("devices", parse_devices)
    run("runtime", parse_runtime)
    run("network_mode", parse_network_mode, name)
    run("logger_type", parse_logger_type)
    if "logger_type" in parsed:
        run("logger_parameters", parse_logger_parameters, parsed["logger_type"])

    bindings: dict[str, list[int]] = {}
    if "internal_ports" in parsed and "external_ports" in parsed:
        try:
            bindings = pair_ports(parsed["internal_ports"], parsed["external_ports"])
        except SettingError as error:
            errors.setdefault("external_ports", []).append(str(error))
    mode = parsed.get("network_mode")
    if bindings and mode == "host":
        errors.setdefault("network_mode", []).append(
            "In host mode the container uses the gateway's ports directly: leave the ports empty, or pick another mode."
        )
    elif bindings and mode and mode.startswith("container:"):
        errors.setdefault("network_mode", []).append(
            "A container that shares another container's network cannot publish ports: leave the ports empty."
        )
    if errors:
        raise SpecErrors(errors)
    return ContainerSpec(
        ports=tuple(parsed["internal_ports"]),
        port_bindings=bindings,
        privileged=bool(values.get("privileged")),
        env=tuple(parsed["env"]),
        entrypoint=tuple(parsed["entrypoint"]),
        memory=parsed["memory"],
        nano_cpus=parsed["cpus"],
        gpus=parsed["gpus"],
        binds=tuple(parsed["volumes"]),
        devices=tuple(parsed["devices"]),
        runtime=parsed["runtime"],
        network_mode=parsed["network_mode"],
        logger_type=parsed["logger_type"],
        logger_parameters=parsed["logger_parameters"],
        restart_on_failure=bool(values.get("restart_on_failure")),
    )


def spec_values(instance: Any) -> dict[str, Any]:
    """The container fields of a model instance (or anything with those attributes) as a mapping."""
    return {name: getattr(instance, name, None) for name in SPEC_FIELDS}

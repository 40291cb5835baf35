"""The container settings of an instance (Kura's orchestrator fields): parsers and Docker create arguments.

Pure functions, no Docker import: each ``parse_*`` takes the text a person typed
and returns the value Docker needs, or raises :class:`SettingError` with a
message that says how to fix it. :mod:`.spec` runs them all and builds the Docker create arguments.

Kura's meaning is kept, with these fixes:

* ``env``: one ``KEY=value`` per line, or Kura's comma-separated form. Kura
  splits on every comma, so ``A=1,2`` loses its ``,2``; here a comma only
  starts a new variable when ``NAME=`` follows it (and a multi-line value is
  never split at all).
* ``entrypoint``: comma-separated as in Kura, or one argument per line (so an
  argument may contain a comma).
* Bad values are refused with a message instead of being skipped (Kura drops
  unparsable volume entries and mismatched port lists with only a log line).
* ``restart_on_failure`` is Docker's ``unless-stopped`` policy, which is what
  Kura sends for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

# Docker's minimum memory limit on Linux (the daemon says "Minimum memory limit allowed is 6MB").
MIN_MEMORY = 6 * 1024 * 1024
MAX_MEMORY = 2**62
MEMORY_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
# Docker refuses less than a hundredth of a CPU; NanoCpus is an integer of 1e-9 CPUs.
MIN_CPUS = Decimal("0.01")
MAX_CPUS = Decimal("4096")
PROTOCOLS = ("tcp", "udp", "sctp")
MAX_ENTRIES = 200

# Kura's logger types: name -> (Docker log driver, label). "" is the daemon's default driver.
# The model's choices and the parser both read this table.
LOGGER_TYPES: dict[str, tuple[str, str]] = {
    "NONE": ("none", "NONE: keep no logs"),
    "DEFAULT": ("", "DEFAULT: the Docker daemon's default (usually a JSON file)"),
    "LOCAL": ("local", "LOCAL: compact files on the gateway"),
    "JSON_FILE": ("json-file", "JSON_FILE: JSON files on the gateway"),
    "SYSLOG": ("syslog", "SYSLOG"),
    "JOURNALD": ("journald", "JOURNALD: the systemd journal"),
    "GELF": ("gelf", "GELF (Graylog, Logstash)"),
    "FLUENTD": ("fluentd", "FLUENTD"),
    "AWSLOGS": ("awslogs", "AWSLOGS: Amazon CloudWatch"),
    "SPLUNK": ("splunk", "SPLUNK"),
    "ETWLOGS": ("etwlogs", "ETWLOGS (Windows only)"),
    "GCPLOGS": ("gcplogs", "GCPLOGS: Google Cloud Logging"),
    "LOKI": ("loki", "LOKI (needs Grafana's Loki plugin)"),
}
DEFAULT_LOGGER = "DEFAULT"
LOGGER_DRIVERS: dict[str, str] = {name: driver for name, (driver, _) in LOGGER_TYPES.items()}
LOGGER_CHOICES = [(name, label) for name, (_, label) in LOGGER_TYPES.items()]
NETWORK_MODES = ("bridge", "none", "host")
RESTART_POLICY = "unless-stopped"
GPU_DRIVER = "nvidia"

# Docker's own rule for container names (the model validates the instance name with it too).
CONTAINER_NAME_PATTERN = r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}"
CONTAINER_NAME_RE = re.compile(rf"^/?{CONTAINER_NAME_PATTERN}$")
CONTAINER_ID_RE = re.compile(r"^[0-9a-f]{12,64}$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
OPTION_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
# A comma starts a new KEY=value entry only when a name and '=' follow it.
ENTRY_SPLIT_RE = re.compile(r",\s*(?=[A-Za-z_][A-Za-z0-9_.-]*=)")
VOLUME_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
RUNTIME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


class SettingError(ValueError):
    """One field's value is wrong; the message says how to fix it."""


@dataclass(frozen=True)
class Port:
    number: int
    protocol: str = "tcp"

    def __str__(self) -> str:
        return f"{self.number}/{self.protocol}"


# --------------------------------------------------------------------------- helpers


def _clean(text: Any) -> str:
    if text is None:
        return ""
    text = str(text)
    if "\x00" in text:
        raise SettingError("Remove the NUL character: Docker cannot pass it on.")
    return text.strip()


def _entries(text: str) -> list[str]:
    """Split a list written comma-separated or one entry per line; blank entries are dropped (as in Kura)."""
    parts = re.split(r"[,\n]", text)
    entries = [part.strip() for part in parts if part.strip()]
    if len(entries) > MAX_ENTRIES:
        raise SettingError(f"At most {MAX_ENTRIES} entries.")
    return entries


def _pairs(text: str) -> list[str]:
    """Split KEY=value entries: one per line, or comma-separated where a comma is followed by NAME=."""
    if "\n" in text:
        pieces = [line.strip() for line in text.splitlines()]
        pieces = [piece for piece in pieces if piece and not piece.startswith("#")]
    else:
        pieces = [piece.strip() for piece in ENTRY_SPLIT_RE.split(text)]
        # Kura ignores empty entries ("A=1," or ",A=1"); so do we.
        pieces = [piece.strip(", ") for piece in pieces]
        pieces = [piece for piece in pieces if piece]
    if len(pieces) > MAX_ENTRIES:
        raise SettingError(f"At most {MAX_ENTRIES} entries.")
    return pieces


def _port_number(text: str, what: str) -> int:
    if not text.isdigit():
        raise SettingError(f"'{text}' is not a port number: {what} ports are whole numbers from 1 to 65535.")
    number = int(text)
    if not 1 <= number <= 65535:
        raise SettingError(f"Port {number} is out of range: use 1 to 65535.")
    return number


def _split_protocol(entry: str) -> tuple[str, str | None]:
    for separator in (":", "/"):
        if separator in entry:
            number, protocol = entry.split(separator, 1)
            return number.strip(), protocol.strip().lower()
    return entry, None


# --------------------------------------------------------------------------- parsers


def parse_internal_ports(text: Any) -> list[Port]:
    """'80, 53:udp, 9:sctp' -> ports inside the container (tcp unless a protocol follows ':' or '/')."""
    ports = []
    for entry in _entries(_clean(text)):
        number, protocol = _split_protocol(entry)
        if protocol is not None and protocol not in PROTOCOLS:
            raise SettingError(f"'{entry}': the protocol after the port is tcp, udp or sctp.")
        ports.append(Port(_port_number(number, "internal"), protocol or "tcp"))
    return ports


def parse_external_ports(text: Any) -> list[tuple[int, str | None]]:
    """'8080, 5353' -> gateway ports. A protocol suffix is tolerated (Kura ignores it) and checked by pairing."""
    ports = []
    for entry in _entries(_clean(text)):
        number, protocol = _split_protocol(entry)
        if protocol is not None and protocol not in PROTOCOLS:
            raise SettingError(f"'{entry}': the protocol after the port is tcp, udp or sctp.")
        ports.append((_port_number(number, "external"), protocol))
    return ports


def pair_ports(internal: list[Port], external: list[tuple[int, str | None]]) -> dict[str, list[int]]:
    """Publish internal[i] on external[i]: {'80/tcp': [8080]}. Errors belong to the external ports field."""
    if len(internal) != len(external):
        raise SettingError(
            f"Give one external port for each internal port, in the same order: {len(internal)} internal, "
            f"{len(external)} external."
        )
    bindings: dict[str, list[int]] = {}
    used: set[tuple[int, str]] = set()
    for port, (number, protocol) in zip(internal, external, strict=True):
        if protocol is not None and protocol != port.protocol:
            raise SettingError(
                f"External port {number} says {protocol} but internal port {port.number} is {port.protocol}: put the "
                "protocol on the internal port only (e.g. 53:udp)."
            )
        if (number, port.protocol) in used:
            raise SettingError(f"External port {number}/{port.protocol} is used twice.")
        used.add((number, port.protocol))
        bindings.setdefault(str(port), []).append(number)
    return bindings


def parse_env(text: Any) -> list[str]:
    """Environment variables -> ['KEY=value', ...]. One per line, or comma-separated (see the module docstring)."""
    result: list[str] = []
    seen: set[str] = set()
    for entry in _pairs(_clean(text)):
        if "=" not in entry:
            raise SettingError(f"'{_short(entry)}' is not NAME=value. Write one NAME=value per line.")
        name, value = entry.split("=", 1)
        name = name.strip()
        if not ENV_NAME_RE.match(name):
            raise SettingError(
                f"'{_short(name)}' is not a variable name: use letters, digits and '_' (also '.' and '-'), not "
                "starting with a digit."
            )
        if name in seen:
            raise SettingError(f"{name} is set twice.")
        seen.add(name)
        result.append(f"{name}={value}")
    return result


def parse_entrypoint(text: Any) -> list[str]:
    """'sh,-c,echo hi' or one argument per line -> the container's ENTRYPOINT (replaces the image's, and its CMD)."""
    text = _clean(text)
    if "\n" in text:
        arguments = [line.strip() for line in text.splitlines() if line.strip()]
    else:
        arguments = [part.strip() for part in text.split(",") if part.strip()]
    if len(arguments) > MAX_ENTRIES:
        raise SettingError(f"At most {MAX_ENTRIES} arguments.")
    return arguments


def parse_memory(text: Any) -> int | None:
    """'512m' -> bytes; blank -> None (no limit). Suffixes b, k, m, g are powers of 1024, as in Kura and Docker."""
    text = _clean(text)
    if not text:
        return None
    # Kura's b/k/m/g; Docker's "512mb" spelling is accepted too.
    match = re.fullmatch(r"(\d+)\s*(?:([kmgKMG])[bB]?|([bB]))?", text)
    if not match:
        raise SettingError(f"'{_short(text)}' is not a memory size: write a whole number with b, k, m or g, e.g. 512m.")
    value = int(match.group(1)) * MEMORY_UNITS[(match.group(2) or "").lower()]
    if value < MIN_MEMORY:
        raise SettingError("Docker needs at least 6m (6 MiB) of memory for a container; leave blank for no limit.")
    if value > MAX_MEMORY:
        raise SettingError("That memory size is too large.")
    return value


def parse_cpus(text: Any) -> int | None:
    """'1.5' -> NanoCpus (1.5e9); blank -> None (no limit)."""
    text = _clean(text)
    if not text:
        return None
    if not re.fullmatch(r"\d*\.?\d+|\d+\.", text):
        hint = " Use a dot for decimals." if "," in text else ""
        raise SettingError(f"'{_short(text)}' is not a number of CPUs, e.g. 0.5, 1 or 1.5.{hint}")
    try:
        cpus = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern above rules it out
        raise SettingError(f"'{_short(text)}' is not a number of CPUs.") from None
    if cpus < MIN_CPUS:
        raise SettingError("Docker needs at least 0.01 CPUs; leave blank for no limit.")
    if cpus > MAX_CPUS:
        raise SettingError(f"At most {MAX_CPUS} CPUs.")
    nano = cpus * 1_000_000_000
    if nano != nano.to_integral_value():
        raise SettingError("Use at most 9 decimals.")
    return int(nano)


def parse_gpus(text: Any) -> int | None:
    """'all' -> -1, '2' -> 2, blank -> None (no GPU)."""
    text = _clean(text)
    if not text:
        return None
    if text.lower() == "all":
        return -1
    if not text.isdigit() or int(text) < 1:
        raise SettingError("Write 'all' or a whole number of GPUs (1 or more); leave blank when there is no GPU.")
    if int(text) > 1024:
        raise SettingError("At most 1024 GPUs.")
    return int(text)


def parse_volumes(text: Any) -> list[str]:
    """'/srv/data:/data, /etc/app:/etc/app:ro' -> Docker binds. The source is a gateway path or a volume name."""
    binds: list[str] = []
    targets: set[str] = set()
    for entry in _entries(_clean(text)):
        parts = [part.strip() for part in entry.split(":")]
        mode = ""
        if len(parts) == 3:
            mode = parts.pop().lower()
            if mode not in ("ro", "rw"):
                raise SettingError(f"'{_short(entry)}': the third part is ro (read-only) or rw, not '{mode}'.")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise SettingError(
                f"'{_short(entry)}' is not gateway-path:container-path (optionally followed by :ro), "
                "e.g. /srv/app/data:/data."
            )
        source, target = parts
        if not (source.startswith("/") or VOLUME_NAME_RE.match(source)):
            raise SettingError(
                f"'{_short(source)}' is neither an absolute path on the gateway (starting with /) nor a volume name."
            )
        if not target.startswith("/") or target == "/":
            raise SettingError(f"'{_short(target)}': the path in the container is absolute and not / itself.")
        if target in targets:
            raise SettingError(f"Two volumes are mounted on {target}.")
        targets.add(target)
        binds.append(f"{source}:{target}" + (f":{mode}" if mode else ""))
    return binds


def parse_devices(text: Any) -> list[str]:
    """'/dev/ttyUSB0, /dev/video0:/dev/video1:r' -> Docker devices (gateway path[:container path[:permissions]])."""
    devices: list[str] = []
    for entry in _entries(_clean(text)):
        parts = [part.strip() for part in entry.split(":")]
        if len(parts) > 3 or not all(parts):
            raise SettingError(f"'{_short(entry)}' is not /dev/NAME, optionally :/dev/NAME-in-container and :rwm.")
        if len(parts) == 2 and not parts[1].startswith("/"):
            # Docker's short form "/dev/x:rwm" (permissions right after the gateway path).
            parts = [parts[0], parts[0], parts[1]]
        for path in parts[:2]:
            if not path.startswith("/"):
                raise SettingError(f"'{_short(path)}' is not an absolute device path such as /dev/ttyUSB0.")
        if len(parts) == 3:
            permissions = parts[2]
            if not permissions or set(permissions) - set("rwm") or len(set(permissions)) != len(permissions):
                raise SettingError(
                    f"'{_short(permissions)}': permissions are some of r (read), w (write), m (mknod), e.g. rw."
                )
        devices.append(":".join(parts))
    return devices


def parse_runtime(text: Any) -> str | None:
    """'nvidia' -> the OCI runtime name registered in the daemon; blank -> the daemon's default (runc)."""
    text = _clean(text)
    if not text:
        return None
    if not RUNTIME_RE.match(text):
        raise SettingError(f"'{_short(text)}' is not a runtime name such as nvidia or runsc.")
    return text


def parse_network_mode(text: Any, own_name: str = "") -> str | None:
    """bridge, none, host or container:NAME; blank -> None (the daemon's default, bridge)."""
    text = _clean(text)
    if not text:
        return None
    if text in NETWORK_MODES:
        return text
    if text.lower() in NETWORK_MODES:
        raise SettingError(f"Network modes are lowercase: write {text.lower()}.")
    if text.lower().startswith("container:"):
        other = text.split(":", 1)[1].strip().lstrip("/")
        if not (CONTAINER_NAME_RE.match(other) or CONTAINER_ID_RE.match(other)):
            raise SettingError("After container: give the name or ID of another container, e.g. container:vpn.")
        if own_name and other == own_name:
            raise SettingError("A container cannot share its own network: name another container.")
        return f"container:{other}"
    raise SettingError("Use bridge, none, host or container:NAME (leave blank for the daemon's default, bridge).")


def parse_logger_type(text: Any) -> str:
    """Kura's logger type name (DEFAULT when blank)."""
    text = _clean(text).upper().replace("-", "_") or DEFAULT_LOGGER
    if text not in LOGGER_DRIVERS:
        raise SettingError(f"Choose one of {', '.join(LOGGER_DRIVERS)}.")
    return text


def parse_logger_parameters(text: Any, logger_type: str = DEFAULT_LOGGER) -> dict[str, str]:
    """'max-size=10m, max-file=3' -> the log driver's options."""
    options: dict[str, str] = {}
    for entry in _pairs(_clean(text)):
        if "=" not in entry:
            raise SettingError(f"'{_short(entry)}' is not option=value, e.g. max-size=10m.")
        name, value = (part.strip() for part in entry.split("=", 1))
        if not OPTION_NAME_RE.match(name):
            raise SettingError(f"'{_short(name)}' is not a logging option name such as max-size or tag.")
        if name in options:
            raise SettingError(f"{name} is set twice.")
        options[name] = value
    if options and logger_type == "NONE":
        raise SettingError("The NONE logger keeps no logs and takes no options: clear them, or pick another logger.")
    return options


def parse_digest_pin(text: Any) -> str:
    """'sha256:<64 hex>' (a ``repo@`` prefix is dropped); blank -> no pin."""
    text = _clean(text)
    if "@" in text:
        text = text.rsplit("@", 1)[1]
    if text and not DIGEST_RE.match(text.lower()):
        raise SettingError("A digest is sha256: followed by 64 hexadecimal digits, as shown after a pull.")
    return text.lower()


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"

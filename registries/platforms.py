"""Platform names: Docker ``info`` and image manifests to OCI ``os/arch[/variant]``.

A gateway reports its platform through Docker ``info`` (``OSType`` ``linux``,
``Architecture`` the kernel's ``uname -m``: ``x86_64``, ``aarch64``,
``armv7l``...); an image index lists ``{"os", "architecture", "variant"}``
dicts. Both are normalized the way containerd's ``platforms`` package does so
they can be compared, and ``matches`` answers "will this gateway run one of
these images?".

Decisions (containerd's ``platforms.Only`` matcher, which Docker uses to pick
an entry of a multi-platform image):

* arm64 drops the ``v8`` variant (``arm64/v8`` is ``arm64``); ``v9`` stays.
* ``arm`` without a variant is ``arm/v7``; ``armhf`` is ``arm/v7``.
* ``armel`` is ``arm/v5`` -- Debian's armel baseline, which Docker's
  ``arm32v5`` images are built from. containerd says ``v6`` here; ``v5`` is
  the safe side: a v5 gateway is never offered a v6-only image.
* A gateway runs its own platform and older variants of it: ``arm/v7`` also
  runs ``arm/v6`` and ``arm/v5``; ``arm64`` also runs 32-bit ``arm`` (v8 down
  to v5); ``amd64/v3`` runs ``v2`` and ``v1``; ``amd64`` also runs ``386``.
  Never the reverse (an ``arm/v6`` gateway does not run ``arm/v7``).
* The OS must be equal; ``unknown/unknown`` (build attestations) never matches.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = [
    "best_match",
    "compatible_platforms",
    "from_docker_info",
    "from_manifest_platform",
    "matches",
    "normalize_arch",
    "normalize_os",
    "parse_platform",
    "platform_string",
]

Platform = tuple[str, str, str | None]

# Architecture spellings (uname -m, Debian, Go, OCI) -> (OCI arch, variant).
# A variant of ``_KEEP`` means "keep the given variant, normalized below".
_KEEP = "*"
_ARCH_ALIASES: dict[str, tuple[str, str | None]] = {
    "x86_64": ("amd64", _KEEP),
    "x86-64": ("amd64", _KEEP),
    "amd64": ("amd64", _KEEP),
    "x64": ("amd64", _KEEP),
    "aarch64": ("arm64", _KEEP),
    "arm64": ("arm64", _KEEP),
    "armv8": ("arm64", None),
    "arm": ("arm", _KEEP),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v5"),
    "armv8l": ("arm", "v8"),
    "armv7l": ("arm", "v7"),
    "armv7": ("arm", "v7"),
    "armv7hl": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "armv6": ("arm", "v6"),
    "armv5l": ("arm", "v5"),
    "armv5tel": ("arm", "v5"),
    "armv5tejl": ("arm", "v5"),
    "i386": ("386", None),
    "i486": ("386", None),
    "i586": ("386", None),
    "i686": ("386", None),
    "x86": ("386", None),
    "386": ("386", None),
    "ppc64le": ("ppc64le", None),
    "ppc64el": ("ppc64le", None),
    "s390x": ("s390x", None),
    "riscv64": ("riscv64", None),
    "mips64le": ("mips64le", None),
    "mips64el": ("mips64le", None),
    "loongarch64": ("loong64", None),
    "loong64": ("loong64", None),
}

_OS_ALIASES = {"macos": "darwin", "osx": "darwin"}

_VERSION = re.compile(r"v?([0-9]+)(?:\.0)?", re.ASCII)


def normalize_os(os: str | None) -> str:
    """Lowercase OS name, ``linux`` when blank."""
    value = (os or "").strip().lower()
    if not value:
        return "linux"
    return _OS_ALIASES.get(value, value)


def _variant_number(variant: str | None) -> int | None:
    match = _VERSION.fullmatch(variant or "")
    return int(match.group(1)) if match else None


def normalize_arch(arch: str, variant: str | None = None) -> tuple[str, str | None]:
    """Return the OCI ``(architecture, variant)`` for any common spelling.

    Unknown architectures are kept, lowercased, with their variant lowercased.
    The variant is None when there is none.
    """
    name = (arch or "").strip().lower()
    given = (variant or "").strip().lower() or None
    oci, fixed = _ARCH_ALIASES.get(name, (name, _KEEP))
    result = given if fixed == _KEEP else fixed
    number = _variant_number(result)
    if oci == "arm64":
        if result is not None and number == 8:
            result = None
        elif number is not None:
            result = f"v{number}"
    elif oci == "arm":
        if result is None:
            result = "v7"
        elif number is not None:
            result = f"v{number}"
    elif oci == "amd64":
        if number == 1:
            result = None
        elif number is not None:
            result = f"v{number}"
    return oci, result


def platform_string(os: str, arch: str, variant: str | None = None) -> str:
    """``linux/arm/v7``: the normalized OCI platform, variant only when set."""
    oci_arch, oci_variant = normalize_arch(arch, variant)
    parts = [normalize_os(os), oci_arch]
    if oci_variant:
        parts.append(oci_variant)
    return "/".join(parts)


def parse_platform(text: str) -> Platform:
    """Split ``os/arch[/variant]`` (or a bare ``arch``, taken as Linux) and normalize.

    Raises ValueError for an empty or over-long specifier.
    """
    parts = [p.strip() for p in (text or "").strip().split("/")]
    if not parts or not parts[0] or len(parts) > 3 or not all(parts):
        raise ValueError(f"{text!r} is not a platform like linux/arm64 or linux/arm/v7.")
    if len(parts) == 1:
        os_name, arch, variant = "linux", parts[0], None
    else:
        os_name, arch = parts[0], parts[1]
        variant = parts[2] if len(parts) == 3 else None
    oci_arch, oci_variant = normalize_arch(arch, variant)
    return normalize_os(os_name), oci_arch, oci_variant


def _join(platform: Platform) -> str:
    os_name, arch, variant = platform
    return f"{os_name}/{arch}/{variant}" if variant else f"{os_name}/{arch}"


def from_docker_info(info: Mapping[str, object]) -> str:
    """The gateway platform from Docker ``info`` (``OSType``, ``Architecture``)."""
    return platform_string(str(info.get("OSType") or "linux"), str(info.get("Architecture") or ""))


def from_manifest_platform(platform: Mapping[str, object]) -> str:
    """The platform of an image index entry's ``platform`` dict."""
    variant = platform.get("variant")
    return platform_string(
        str(platform.get("os") or ""), str(platform.get("architecture") or ""), str(variant) if variant else None
    )


def _vector(platform: Platform) -> list[Platform]:
    """The platforms a machine of ``platform`` runs, best first (containerd order)."""
    os_name, arch, variant = platform
    vector = [platform]
    number = _variant_number(variant)
    if arch == "amd64":
        if number is not None and number > 1:
            vector += [(os_name, "amd64", f"v{n}" if n > 1 else None) for n in range(number - 1, 0, -1)]
        vector.append((os_name, "386", None))
    elif arch == "arm":
        if number is not None and number > 5:
            vector += [(os_name, "arm", f"v{n}") for n in range(number - 1, 4, -1)]
    elif arch == "arm64":
        vector += _vector((os_name, "arm", variant or "v8"))
    return vector


def compatible_platforms(gateway: str) -> list[str]:
    """Every platform string a gateway can run, its own first."""
    return [_join(p) for p in _vector(parse_platform(gateway))]


def best_match(gateway: str, candidates: Iterable[str]) -> str | None:
    """The candidate Docker would pick on ``gateway`` (as given), or None."""
    try:
        wanted = _vector(parse_platform(gateway))
    except ValueError:
        return None
    parsed: list[tuple[Platform, str]] = []
    for candidate in candidates:
        try:
            parsed.append((parse_platform(candidate), candidate))
        except ValueError:
            continue
    if "unknown" in wanted[0][:2]:
        return None
    for platform in wanted:
        for normalized, original in parsed:
            if normalized == platform:
                return original
    return None


def matches(gateway: str, candidates: Iterable[str]) -> bool:
    """True if the gateway runs at least one of the candidate platforms."""
    return best_match(gateway, candidates) is not None

"""Unit tests for registries.platforms: OCI platform names and matching."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registries.platforms import (
    best_match,
    compatible_platforms,
    from_docker_info,
    from_manifest_platform,
    matches,
    normalize_arch,
    normalize_os,
    parse_platform,
    platform_string,
)

ARCHES = [
    ("x86_64", None, ("amd64", None)),
    ("x86-64", None, ("amd64", None)),
    ("amd64", None, ("amd64", None)),
    ("AMD64", None, ("amd64", None)),
    ("amd64", "v1", ("amd64", None)),
    ("amd64", "v3", ("amd64", "v3")),
    ("aarch64", None, ("arm64", None)),
    ("arm64", None, ("arm64", None)),
    ("arm64", "v8", ("arm64", None)),
    ("arm64", "8", ("arm64", None)),
    ("arm64", "v8.0", ("arm64", None)),
    ("arm64", "9.0", ("arm64", "v9")),
    ("armv7l", None, ("arm", "v7")),
    ("armhf", None, ("arm", "v7")),
    ("arm", None, ("arm", "v7")),
    ("arm", "", ("arm", "v7")),
    ("arm", "7", ("arm", "v7")),
    ("arm", "V6", ("arm", "v6")),
    ("armv6l", None, ("arm", "v6")),
    ("armel", None, ("arm", "v5")),
    ("armv5tel", None, ("arm", "v5")),
    ("armv8l", None, ("arm", "v8")),
    ("i386", None, ("386", None)),
    ("i686", None, ("386", None)),
    ("386", None, ("386", None)),
    ("ppc64le", None, ("ppc64le", None)),
    ("ppc64el", None, ("ppc64le", None)),
    ("s390x", None, ("s390x", None)),
    ("riscv64", None, ("riscv64", None)),
    ("mips64le", None, ("mips64le", None)),
    ("mips64el", None, ("mips64le", None)),
    ("loongarch64", None, ("loong64", None)),
    ("Sparc64", None, ("sparc64", None)),
    ("Weird", "X1", ("weird", "x1")),
]


@pytest.mark.parametrize(("arch", "variant", "expected"), ARCHES, ids=[f"{a}-{v}" for a, v, _ in ARCHES])
def test_it_normalizes_every_architecture_spelling_to_oci(
    arch: str, variant: str | None, expected: tuple[str, str | None]
) -> None:
    assert normalize_arch(arch, variant) == expected


@pytest.mark.parametrize(
    ("os", "arch", "variant", "expected"),
    [
        ("linux", "armv7l", None, "linux/arm/v7"),
        ("Linux", "aarch64", None, "linux/arm64"),
        ("linux", "arm64", "v8", "linux/arm64"),
        ("linux", "x86_64", None, "linux/amd64"),
        ("windows", "amd64", None, "windows/amd64"),
        ("", "riscv64", None, "linux/riscv64"),
    ],
)
def test_it_builds_a_platform_string(os: str, arch: str, variant: str | None, expected: str) -> None:
    assert platform_string(os, arch, variant) == expected


def test_it_reads_the_gateway_platform_from_docker_info() -> None:
    assert from_docker_info({"OSType": "linux", "Architecture": "armv7l"}) == "linux/arm/v7"
    assert from_docker_info({"OSType": "linux", "Architecture": "aarch64"}) == "linux/arm64"
    assert from_docker_info({"Architecture": "x86_64"}) == "linux/amd64"


def test_it_reads_a_manifest_platform_dict() -> None:
    assert from_manifest_platform({"os": "linux", "architecture": "arm", "variant": "v6"}) == "linux/arm/v6"
    assert from_manifest_platform({"os": "linux", "architecture": "arm64", "variant": "v8"}) == "linux/arm64"
    assert from_manifest_platform({"os": "linux", "architecture": "amd64"}) == "linux/amd64"


def test_it_keeps_unknown_os_names_lowercase() -> None:
    assert normalize_os("FreeBSD") == "freebsd"
    assert normalize_os(None) == "linux"


@pytest.mark.parametrize("text", ["", "/", "linux/", "linux//v7", "a/b/c/d"])
def test_it_refuses_a_malformed_platform_specifier(text: str) -> None:
    with pytest.raises(ValueError):
        parse_platform(text)


def test_it_takes_a_bare_architecture_as_linux() -> None:
    assert parse_platform("arm64") == ("linux", "arm64", None)


MATCHES = [
    ("linux/arm64", ["linux/arm64/v8"], True),
    ("linux/arm64", ["linux/arm64"], True),
    ("linux/arm64/v8", ["linux/arm64"], True),
    ("linux/arm64", ["linux/arm/v7"], True),
    ("linux/arm64", ["linux/amd64"], False),
    ("linux/arm/v7", ["linux/arm/v7"], True),
    ("linux/arm/v7", ["linux/arm"], True),
    ("linux/arm/v7", ["linux/arm/v6"], True),
    ("linux/arm/v7", ["linux/arm/v5"], True),
    ("linux/arm/v7", ["linux/arm64"], False),
    ("linux/arm/v6", ["linux/arm/v7"], False),
    ("linux/arm/v5", ["linux/arm/v6"], False),
    ("linux/amd64", ["linux/386"], True),
    ("linux/386", ["linux/amd64"], False),
    ("linux/amd64/v3", ["linux/amd64"], True),
    ("linux/amd64", ["linux/amd64/v3"], False),
    ("linux/amd64", ["windows/amd64"], False),
    ("linux/amd64", ["unknown/unknown"], False),
    ("linux/amd64", ["linux/arm64", "unknown/unknown", "linux/amd64"], True),
    ("linux/amd64", [], False),
    ("linux/amd64", ["garbage//", "linux/amd64"], True),
    ("not//valid", ["linux/amd64"], False),
]


@pytest.mark.parametrize(("gateway", "candidates", "expected"), MATCHES, ids=[f"{g}-{c}" for g, c, _ in MATCHES])
def test_it_matches_a_gateway_against_image_platforms_like_containerd(
    gateway: str, candidates: list[str], expected: bool
) -> None:
    assert matches(gateway, candidates) is expected


def test_it_prefers_the_exact_platform_over_an_older_variant() -> None:
    assert best_match("linux/arm/v7", ["linux/arm/v6", "linux/arm/v7"]) == "linux/arm/v7"
    assert best_match("linux/arm64", ["linux/arm/v7", "linux/arm64/v8"]) == "linux/arm64/v8"


def test_it_lists_what_a_gateway_runs_best_first() -> None:
    assert compatible_platforms("linux/arm64") == [
        "linux/arm64",
        "linux/arm/v8",
        "linux/arm/v7",
        "linux/arm/v6",
        "linux/arm/v5",
    ]
    assert compatible_platforms("linux/amd64/v3") == ["linux/amd64/v3", "linux/amd64/v2", "linux/amd64", "linux/386"]


@given(st.text(max_size=20), st.one_of(st.none(), st.text(max_size=5)))
def test_normalizing_is_idempotent(arch: str, variant: str | None) -> None:
    once = normalize_arch(arch, variant)
    assert normalize_arch(*once) == once

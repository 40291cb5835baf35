"""Unit tests for registries.kinds: detecting the registry kind of a host."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registries.kinds import GENERIC, KINDS, RegistryKind, detect_kind, get_kind, host_without_port

HOSTS = [
    ("", "dockerhub"),
    ("docker.io", "dockerhub"),
    ("index.docker.io", "dockerhub"),
    ("registry-1.docker.io", "dockerhub"),
    ("Docker.IO", "dockerhub"),
    ("123456789012.dkr.ecr.eu-west-1.amazonaws.com", "ecr"),
    ("123456789012.dkr.ecr-fips.us-east-1.amazonaws.com", "ecr"),
    ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", "ecr"),
    ("123456789012.dkr-ecr.us-east-1.on.aws", "ecr"),
    ("123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov", "ecr"),
    ("123456789012.dkr.ecr.eu-west-1.amazonaws.com:443", "ecr"),
    ("public.ecr.aws", "ecr-public"),
    ("ghcr.io", "ghcr"),
    ("registry.gitlab.com", "gitlab"),
    ("quay.io", "quay"),
    ("myregistry.azurecr.io", "acr"),
    ("myregistry.azurecr.cn", "acr"),
    ("myregistry.azurecr.us", "acr"),
    ("europe-west1-docker.pkg.dev", "google"),
    ("us-docker.pkg.dev", "google"),
    ("gcr.io", "google"),
    ("us.gcr.io", "google"),
    ("eu.gcr.io", "google"),
    ("asia.gcr.io", "google"),
    ("harbor.example.com", "generic"),
    ("localhost:5000", "generic"),
    ("127.0.0.1:5000", "generic"),
    ("[::1]:5000", "generic"),
    ("registry.example.com", "generic"),
    ("gitlab.example.com", "generic"),
]


@pytest.mark.parametrize(("host", "slug"), HOSTS, ids=[h or "blank" for h, _ in HOSTS])
def test_it_detects_the_kind_of_each_known_registry_host(host: str, slug: str) -> None:
    assert detect_kind(host).slug == slug


EVIL = [
    "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example",
    "ghcr.io.evil.example",
    "evilghcr.io",
    "quay.io.example",
    "docker.io.evil.example",
    "fakedocker.io",
    "public.ecr.aws.evil.example",
    "myregistry.azurecr.io.evil.example",
    "azurecr.io",
    "europe-west1-docker.pkg.dev.evil.example",
    "docker.pkg.dev",
    "evil.gcr.io",
    "registry.gitlab.com.evil.example",
]


@pytest.mark.parametrize("host", EVIL)
def test_it_treats_lookalike_hosts_as_generic_registries(host: str) -> None:
    assert detect_kind(host) is GENERIC


def test_it_adds_gitlab_hosts_from_a_setting() -> None:
    extra = {"gitlab": ["registry.example.com", "Gitlab.Corp:5050"]}
    assert detect_kind("registry.example.com", extra_hosts=extra).slug == "gitlab"
    assert detect_kind("gitlab.corp:5050", extra_hosts=extra).slug == "gitlab"
    assert detect_kind("other.example.com", extra_hosts=extra).slug == "generic"


def test_it_ignores_extra_hosts_for_unknown_kinds() -> None:
    assert detect_kind("x.example", extra_hosts={"nope": ["x.example"]}) is GENERIC


def test_it_finds_a_kind_by_slug() -> None:
    assert get_kind("ecr").fixed_username == "AWS"
    with pytest.raises(KeyError):
        get_kind("nope")


def test_every_kind_has_a_unique_slug_and_all_its_texts() -> None:
    slugs = [k.slug for k in KINDS]
    assert len(slugs) == len(set(slugs))
    for kind in KINDS:
        for text in (
            kind.label,
            kind.registry_url_rule,
            kind.username_hint,
            kind.password_hint,
            kind.help,
            kind.example_image,
        ):
            assert text.strip(), kind.slug


def test_every_kinds_example_image_is_detected_as_that_kind() -> None:
    for kind in KINDS:
        first = kind.example_image.split("/", 1)[0]
        host = first if ("." in first or ":" in first) else ""
        assert detect_kind(host) is kind, kind.slug


def test_the_catch_all_comes_last_and_only_once() -> None:
    assert [k.catch_all for k in KINDS] == [False] * (len(KINDS) - 1) + [True]


def test_docker_hub_help_names_the_token_page() -> None:
    assert "https://app.docker.com/settings/personal-access-tokens" in get_kind("dockerhub").help


def test_a_kind_is_frozen() -> None:
    with pytest.raises(AttributeError):
        get_kind("quay").slug = "x"  # type: ignore[misc]
    assert isinstance(get_kind("quay"), RegistryKind)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("localhost:5000", "localhost"),
        ("[::1]:5000", "[::1]"),
        ("[::1]", "[::1]"),
        ("Quay.IO", "quay.io"),
        ("quay.io:443", "quay.io"),
        ("", ""),
    ],
)
def test_it_strips_the_port_from_a_host(host: str, expected: str) -> None:
    assert host_without_port(host) == expected


@given(st.text(max_size=60))
def test_detecting_a_kind_never_raises(host: str) -> None:
    assert detect_kind(host) in KINDS

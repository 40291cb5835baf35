"""Unit tests for registries.kinds and registries.credentials: the kind of a host, and where logins go."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registries.credentials import DOCKER_HUB_AUTH_KEY, auth_config, login_host
from registries.decode import decode_uri
from registries.kinds import DOCKER_HUB, GENERIC, KINDS, RegistryKind, detect_kind, get_kind, host_without_port
from registries.reference import DOCKER_HUB_HOSTS, is_docker_hub
from registries.validation import validate_registry_fields

HOSTS = [
    ("", "dockerhub"),
    ("docker.io", "dockerhub"),
    ("index.docker.io", "dockerhub"),
    ("registry-1.docker.io", "dockerhub"),
    ("registry.hub.docker.com", "dockerhub"),
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


# --- Docker Hub's aliases, and the host a login is sent to -------------------------------------


@pytest.mark.parametrize("alias", sorted(DOCKER_HUB_HOSTS))
def test_credentials_kinds_validation_and_decoding_agree_on_every_docker_hub_alias(alias: str) -> None:
    assert is_docker_hub(alias) and is_docker_hub(alias.upper())
    assert detect_kind(alias) is DOCKER_HUB
    for url in (alias, f"https://{alias}", f"https://{alias.upper()}/v2/"):
        assert login_host("myuser/app", url) == "docker.io"
        assert auth_config(url, "myuser", "pw")["serveraddress"] == DOCKER_HUB_AUTH_KEY  # type: ignore[index]
        result = validate_registry_fields("myuser/app", "1", url, "myuser", "pw")
        assert (result.errors, result.kind, result.cleaned["registry_url"]) == ({}, DOCKER_HUB, ""), url
    image = f"{alias}/myuser/app"
    result = validate_registry_fields(image, "1", "", "myuser", "pw")
    assert (result.errors, result.kind, result.cleaned["image_name"]) == ({}, DOCKER_HUB, "myuser/app")
    decoded = decode_uri(f"{image}:1")
    assert (decoded.kind, decoded.registry_host, decoded.registry_url) == ("dockerhub", "docker.io", "")
    assert login_host(image, "") == "docker.io"


ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


@pytest.mark.parametrize(
    ("image_name", "registry_url", "expected"),
    [
        ("busybox", "", "docker.io"),
        ("myuser/app", "", "docker.io"),
        ("", "", "docker.io"),
        ("  ", "  ", "docker.io"),
        ("index.docker.io/myuser/app", "", "docker.io"),
        ("registry-1.docker.io/library/busybox", "", "docker.io"),
        ("myuser/app", "https://index.docker.io/v1/", "docker.io"),
        ("ghcr.io/owner/app", "", "ghcr.io"),
        ("Registry.Example.com:5000/team/app", "", "registry.example.com:5000"),
        ("localhost:5000/app", "", "localhost:5000"),
        ("[::1]:5000/app", "", "[::1]:5000"),
        (f"{ECR}/team/app", f"https://{ECR}/team/", ECR),
        ("ghcr.io/owner/app", "ghcr.io", "ghcr.io"),
        # The Registry URL wins: it is what the operator said the password is for.
        ("app", "https://user:pw@Registry.Example.com:5000/v2/", "registry.example.com:5000"),
        # The daemon keeps a port, even the default one, so the login does too.
        ("registry.example.com:443/app", "", "registry.example.com:443"),
        ("myuser/app", "docker.io:443", "docker.io:443"),
        # Refused by the grammar: still a best guess, so a message or a log can name a host.
        ("Bad Name!", "", "docker.io"),
        ("bad_host.example.com:5000/App!", "", "bad_host.example.com:5000"),
    ],
)
def test_login_host_is_the_registry_url_host_or_else_the_image_registry(
    image_name: str, registry_url: str, expected: str
) -> None:
    assert login_host(image_name, registry_url) == expected


@given(st.text(max_size=80), st.text(max_size=80))
def test_login_host_never_raises_and_is_lowercase(image_name: str, registry_url: str) -> None:
    host = login_host(image_name, registry_url)
    assert host and host == host.lower()


def test_auth_config_sends_the_login_to_the_same_host_as_login_host() -> None:
    assert auth_config("", "", "", image_name="ghcr.io/owner/app") is None
    assert auth_config("", "bob", "pw") == {"username": "bob", "password": "pw", "serveraddress": DOCKER_HUB_AUTH_KEY}
    assert auth_config("", "bob", "pw", image_name="ghcr.io/owner/app")["serveraddress"] == "ghcr.io"  # type: ignore[index]
    config = auth_config(f"{ECR}/team/", "AWS", "token", image_name=f"{ECR}/team/app")
    assert config == {"username": "AWS", "password": "token", "serveraddress": ECR}

"""Unit tests for registries.decode: pasted image URIs to form fields."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from registries.decode import DecodedImage, RegistryUrl, RegistryUrlError, decode_uri, parse_registry_url, strip_pasted
from registries.reference import ReferenceError, parse_normalized

ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
DIGEST = "sha256:" + "a" * 64

# (pasted text, image_name, image_tag, digest, registry_url, username, kind)
CASES = [
    (
        "an ecr uri with a directory",
        f"{ECR}/team/app:1.4",
        f"{ECR}/team/app",
        "1.4",
        None,
        f"{ECR}/team/",
        "AWS",
        "ecr",
    ),
    ("an ecr uri without a directory", f"{ECR}/app:1.4", f"{ECR}/app", "1.4", None, ECR, "AWS", "ecr"),
    (
        "an ecr uri with nested directories",
        f"{ECR}/a/b/app",
        f"{ECR}/a/b/app",
        "latest",
        None,
        f"{ECR}/a/b/",
        "AWS",
        "ecr",
    ),
    (
        "a fips ecr uri",
        "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/app:1",
        "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/app",
        "1",
        None,
        "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
        "AWS",
        "ecr",
    ),
    (
        "a china ecr uri",
        "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/team/app:2",
        "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/team/app",
        "2",
        None,
        "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/team/",
        "AWS",
        "ecr",
    ),
    (
        "a dual-stack ecr uri",
        "123456789012.dkr-ecr.us-east-1.on.aws/team/app:2",
        "123456789012.dkr-ecr.us-east-1.on.aws/team/app",
        "2",
        None,
        "123456789012.dkr-ecr.us-east-1.on.aws/team/",
        "AWS",
        "ecr",
    ),
    (
        "an ecr uri pinned by digest",
        f"{ECR}/team/app@{DIGEST}",
        f"{ECR}/team/app",
        "",
        DIGEST,
        f"{ECR}/team/",
        "AWS",
        "ecr",
    ),
    (
        "an ecr public uri",
        "public.ecr.aws/docker/library/busybox:1.36",
        "public.ecr.aws/docker/library/busybox",
        "1.36",
        None,
        "public.ecr.aws",
        "",
        "ecr-public",
    ),
    ("an official hub image", "busybox", "busybox", "latest", None, "", "", "dockerhub"),
    ("an official hub image with library", "library/busybox:1.36", "busybox", "1.36", None, "", "", "dockerhub"),
    ("a fully qualified hub image", "docker.io/library/busybox:1.36", "busybox", "1.36", None, "", "", "dockerhub"),
    ("a hub image on index.docker.io", "index.docker.io/user/app:2", "user/app", "2", None, "", "", "dockerhub"),
    ("a private hub image", "user/app:2", "user/app", "2", None, "", "", "dockerhub"),
    ("a hub image with a digest", f"user/app@{DIGEST}", "user/app", "", DIGEST, "", "", "dockerhub"),
    ("a ghcr image", "ghcr.io/owner/app:v1.2.3", "ghcr.io/owner/app", "v1.2.3", None, "ghcr.io", "", "ghcr"),
    (
        "a gitlab image",
        "registry.gitlab.com/group/project/app:main",
        "registry.gitlab.com/group/project/app",
        "main",
        None,
        "registry.gitlab.com",
        "",
        "gitlab",
    ),
    ("a quay image", "quay.io/org/app:latest", "quay.io/org/app", "latest", None, "quay.io", "", "quay"),
    (
        "an azure image",
        "myreg.azurecr.io/team/app:1",
        "myreg.azurecr.io/team/app",
        "1",
        None,
        "myreg.azurecr.io",
        "",
        "acr",
    ),
    (
        "an artifact registry image",
        "europe-west1-docker.pkg.dev/proj/repo/app:1",
        "europe-west1-docker.pkg.dev/proj/repo/app",
        "1",
        None,
        "europe-west1-docker.pkg.dev",
        "",
        "google",
    ),
    ("a gcr image", "eu.gcr.io/proj/app:1", "eu.gcr.io/proj/app", "1", None, "eu.gcr.io", "", "google"),
    (
        "a harbor image",
        "harbor.example.com/proj/app:1",
        "harbor.example.com/proj/app",
        "1",
        None,
        "harbor.example.com",
        "",
        "generic",
    ),
    (
        "a localhost image with a port and digest",
        f"localhost:5000/app@{DIGEST}",
        "localhost:5000/app",
        "",
        DIGEST,
        "localhost:5000",
        "",
        "generic",
    ),
    ("an ipv6 image", "[::1]:5000/app:1", "[::1]:5000/app", "1", None, "[::1]:5000", "", "generic"),
    (
        "an ipv4 image",
        "127.0.0.1:5000/team/app:1",
        "127.0.0.1:5000/team/app",
        "1",
        None,
        "127.0.0.1:5000",
        "",
        "generic",
    ),
    ("an image with tag and digest", f"ghcr.io/o/app:1@{DIGEST}", "ghcr.io/o/app", "1", DIGEST, "ghcr.io", "", "ghcr"),
    (
        "a host in capitals kept as written",
        "Registry.Example.com/app:1",
        "Registry.Example.com/app",
        "1",
        None,
        "Registry.Example.com",
        "",
        "generic",
    ),
]


@pytest.mark.parametrize(
    ("text", "name", "tag", "digest", "registry_url", "username", "kind"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_it_decodes_a_pasted_uri_into_form_fields(
    text: str, name: str, tag: str, digest: str | None, registry_url: str, username: str, kind: str
) -> None:
    decoded = decode_uri(text)
    assert (decoded.image_name, decoded.image_tag, decoded.digest) == (name, tag, digest)
    assert (decoded.registry_url, decoded.username, decoded.kind) == (registry_url, username, kind)


def test_it_decodes_an_ecr_uri_with_a_directory_exactly_as_the_issue_says() -> None:
    decoded = decode_uri(f"{ECR}/team/app:1.4")
    assert decoded.as_form_fields() == {
        "image_name": f"{ECR}/team/app",
        "image_tag": "1.4",
        "registry_url": f"{ECR}/team/",
        "registry_username": "AWS",
    }
    assert decoded.registry_host == ECR


WRAPPED = [
    "  busybox:1.36  ",
    "\tbusybox:1.36\n",
    "docker pull busybox:1.36",
    "DOCKER PULL busybox:1.36",
    "docker  pull   busybox:1.36",
    "docker image pull busybox:1.36",
    "sudo docker pull busybox:1.36",
    "podman pull busybox:1.36",
    "docker pull --platform linux/arm64 busybox:1.36",
    "docker pull --platform=linux/arm/v7 -q busybox:1.36",
    "https://busybox:1.36",
    "http://busybox:1.36/",
    "busybox:1.36/",
    '"busybox:1.36"',
    "`docker pull busybox:1.36`",
]


@pytest.mark.parametrize("text", WRAPPED)
def test_it_strips_what_surrounds_a_pasted_reference(text: str) -> None:
    decoded = decode_uri(text)
    assert (decoded.image_name, decoded.image_tag, decoded.kind) == ("busybox", "1.36", "dockerhub")


def test_it_strips_a_scheme_and_trailing_slash_from_a_registry_uri() -> None:
    assert decode_uri(f"https://{ECR}/team/app/").image_name == f"{ECR}/team/app"
    assert strip_pasted(" docker pull https://ghcr.io/o/app/ ") == "ghcr.io/o/app"


BAD = [
    "",
    "   ",
    "docker pull",
    "docker pull ",
    "Busybox/App",
    "ghcr.io/Owner/app",
    "app:",
    "app:-bad",
    "app:" + "a" * 129,
    "app@sha256:short",
    "app@",
    "https://",
    "ghcr.io/owner/app:tag with space",
    "two words",
    "ftp://host/app",
    "host//app",
    "/app",
    "a" * 256,
]


@pytest.mark.parametrize("text", BAD, ids=[b[:40] or "empty" for b in BAD])
def test_it_refuses_an_invalid_uri_with_the_grammars_message(text: str) -> None:
    with pytest.raises(ReferenceError) as info:
        decode_uri(text)
    assert str(info.value)
    stripped = strip_pasted(text)
    with pytest.raises(ReferenceError) as grammar:
        parse_normalized(stripped)
    assert str(info.value) == str(grammar.value)


def test_a_decoded_image_lists_every_field_for_json() -> None:
    decoded = decode_uri("ghcr.io/o/app:1")
    assert isinstance(decoded, DecodedImage)
    assert decoded.as_dict() == {
        "image_name": "ghcr.io/o/app",
        "image_tag": "1",
        "digest": None,
        "registry_url": "ghcr.io",
        "username": "",
        "kind": "ghcr",
        "registry_host": "ghcr.io",
    }


def test_decoding_is_stable_when_fed_its_own_output() -> None:
    for case in CASES:
        decoded = decode_uri(case[1])
        again = decode_uri(decoded.image_name + (f":{decoded.image_tag}" if decoded.image_tag else ""))
        assert (again.image_name, again.registry_url, again.kind) == (
            decoded.image_name,
            decoded.registry_url,
            decoded.kind,
        )


@given(st.text(max_size=120))
def test_decoding_any_text_raises_nothing_but_reference_error(text: str) -> None:
    try:
        decoded = decode_uri(text)
    except ReferenceError:
        return
    assert decoded.image_name
    assert decoded.image_tag or decoded.digest


_COMPONENT = st.from_regex(r"[a-z0-9]{1,8}(?:[._-][a-z0-9]{1,8}){0,2}", fullmatch=True)


@given(
    st.sampled_from(["", "ghcr.io/", "localhost:5000/", f"{ECR}/", "quay.io/", "docker.io/"]),
    st.lists(_COMPONENT, min_size=1, max_size=3),
    st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)),
)
def test_every_valid_reference_decodes_back_to_its_parts(host: str, components: list[str], tag: str | None) -> None:
    # A first component with a '.' reads as a registry host, not a Hub namespace.
    assume(host or len(components) == 1 or "." not in components[0])
    text = host + "/".join(components) + (f":{tag}" if tag else "")
    decoded = decode_uri(text)
    assert decoded.image_tag == (tag or "latest")
    rebuilt = parse_normalized(decoded.image_name)
    assert rebuilt.name == parse_normalized(text).name


def test_it_decodes_a_hub_image_written_with_registry_1_as_its_familiar_name() -> None:
    decoded = decode_uri("registry-1.docker.io/user/app:2")
    assert (decoded.image_name, decoded.registry_url, decoded.kind) == ("user/app", "", "dockerhub")
    assert decoded.registry_host == "docker.io"


def test_it_keeps_a_hub_namespace_that_would_read_as_a_host_whole() -> None:
    assert decode_uri("docker.io/my.org/app").image_name == "docker.io/my.org/app"


def test_it_refuses_a_first_component_that_is_neither_host_nor_namespace() -> None:
    with pytest.raises(ReferenceError) as info:
        decode_uri("foo_bar.com/app:1")
    assert "foo_bar.com" in str(info.value)
    assert info.value.part == "domain"


REGISTRY_URLS = [
    ("", None),
    ("   ", None),
    ("ghcr.io", RegistryUrl("ghcr.io", "")),
    ("https://ghcr.io/", RegistryUrl("ghcr.io", "")),
    ("HTTP://Registry.Example.com:5000", RegistryUrl("Registry.Example.com:5000", "")),
    ("https://index.docker.io/v1/", RegistryUrl("index.docker.io", "")),
    ("registry.example.com/v2", RegistryUrl("registry.example.com", "")),
    (f"{ECR}/team/", RegistryUrl(ECR, "team")),
    (f"https://{ECR}/a/b", RegistryUrl(ECR, "a/b")),
    ("[::1]:5000", RegistryUrl("[::1]:5000", "")),
    ("127.0.0.1:5000/", RegistryUrl("127.0.0.1:5000", "")),
]


@pytest.mark.parametrize(("text", "expected"), REGISTRY_URLS)
def test_it_splits_a_registry_url_into_host_and_path(text: str, expected: RegistryUrl | None) -> None:
    assert parse_registry_url(text) == expected


BAD_REGISTRY_URLS = [
    ("https://bob:Sup3rS3cret@ghcr.io", "username or password"),
    ("https://bob:p/ss@ghcr.io", "username or password"),
    ("ghcr.io?x=1", "query"),
    ("ghcr.io/#x", "fragment"),
    ("ghcr .io", "space"),
    ("ghcr.io\x7f", "control character"),
    ("oci://ghcr.io", "oci://"),
    ("https://", "no host"),
    ("/team/", "no host"),
    ("bad_host.example", "not a valid host name"),
    ("host.example:0", "between 1 and 65535"),
    ("host.example:70000", "between 1 and 65535"),
    ("host.example/a//b", "empty part"),
    ("h" * 513, "limit is 512"),
]


@pytest.mark.parametrize(("text", "words"), BAD_REGISTRY_URLS)
def test_it_refuses_a_bad_registry_url_with_a_sentence(text: str, words: str) -> None:
    with pytest.raises(RegistryUrlError) as info:
        parse_registry_url(text)
    message = str(info.value)
    assert words in message
    assert message[0].isupper() and message.endswith(".")
    assert "Sup3rS3cret" not in message and "p/ss" not in message

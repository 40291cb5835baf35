"""Product tests for registries.reference: what operators type, what we store, what we tell them."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from registries.reference import (
    DigestReference,
    ImageReference,
    ReferenceError,
    is_docker_hub,
    normalize_host,
    parse,
    parse_normalized,
    validate_digest,
    validate_tag,
)
from registries.reference.go_api import (
    familiar_match,
    parse_any_reference,
    parse_docker_ref,
    parse_named,
    split_hostname,
    with_digest,
    with_name,
    with_tag,
)

SHA256 = "sha256:" + "0123456789abcdef" * 4
SHA384 = "sha384:" + "ab" * 48
SHA512 = "sha512:" + "cd" * 64
ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"

# (typed by the operator, full normalized form, familiar form)
DOCKER_HUB = [
    ("busybox", "docker.io/library/busybox", "busybox"),
    ("busybox:latest", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36.1-musl", "docker.io/library/busybox:1.36.1-musl", "busybox:1.36.1-musl"),
    ("library/busybox", "docker.io/library/busybox", "busybox"),
    ("library/busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("docker.io/busybox", "docker.io/library/busybox", "busybox"),
    ("docker.io/library/busybox", "docker.io/library/busybox", "busybox"),
    ("index.docker.io/busybox", "docker.io/library/busybox", "busybox"),
    ("index.docker.io/library/busybox:musl", "docker.io/library/busybox:musl", "busybox:musl"),
    ("user/app", "docker.io/user/app", "user/app"),
    ("user/app:v1.2.3", "docker.io/user/app:v1.2.3", "user/app:v1.2.3"),
    ("docker.io/user/app", "docker.io/user/app", "user/app"),
    ("index.docker.io/user/app:edge", "docker.io/user/app:edge", "user/app:edge"),
    ("library/foo/bar", "docker.io/library/foo/bar", "library/foo/bar"),
    ("team/group/app", "docker.io/team/group/app", "team/group/app"),
    ("nginx:1.25-alpine", "docker.io/library/nginx:1.25-alpine", "nginx:1.25-alpine"),
    ("my-app", "docker.io/library/my-app", "my-app"),
    ("my---app", "docker.io/library/my---app", "my---app"),
    ("my_app", "docker.io/library/my_app", "my_app"),
    ("my__app", "docker.io/library/my__app", "my__app"),
    ("my.app", "docker.io/library/my.app", "my.app"),
    ("a", "docker.io/library/a", "a"),
    ("0", "docker.io/library/0", "0"),
    ("ubuntu-12.04-base", "docker.io/library/ubuntu-12.04-base", "ubuntu-12.04-base"),
    ("other/library", "docker.io/other/library", "other/library"),
    ("localhostx/app", "docker.io/localhostx/app", "localhostx/app"),
    # Go reads a bare "host:port" as a Hub image with a tag: no '/' means no registry.
    ("example.com:5000", "docker.io/library/example.com:5000", "example.com:5000"),
    ("localhost:5000", "docker.io/library/localhost:5000", "localhost:5000"),
    ("192.168.0.1:80", "docker.io/library/192.168.0.1:80", "192.168.0.1:80"),
    ("0123456789abcdef" * 4 + "x", "docker.io/library/" + "0123456789abcdef" * 4 + "x", "0123456789abcdef" * 4 + "x"),
    (
        "0123456789abcdef" * 3 + "0123456789abcde",
        "docker.io/library/" + "0123456789abcdef" * 3 + "0123456789abcde",
        "0123456789abcdef" * 3 + "0123456789abcde",
    ),
    ("docker.io/" + "0123456789abcdef" * 4, "docker.io/library/" + "0123456789abcdef" * 4, "0123456789abcdef" * 4),
]

OTHER_REGISTRIES = [
    ("ghcr.io/team/app", "ghcr.io/team/app"),
    ("ghcr.io/team/app:main", "ghcr.io/team/app:main"),
    ("ghcr.io/team/sub/app:1.0", "ghcr.io/team/sub/app:1.0"),
    (f"{ECR}/app", f"{ECR}/app"),
    (f"{ECR}/team/service:2024.06.01", f"{ECR}/team/service:2024.06.01"),
    (f"{ECR}/team/service@{SHA256}", f"{ECR}/team/service@{SHA256}"),
    ("public.ecr.aws/nginx/nginx:stable", "public.ecr.aws/nginx/nginx:stable"),
    ("gcr.io/project/image:tag", "gcr.io/project/image:tag"),
    ("us-docker.pkg.dev/proj/repo/img:1", "us-docker.pkg.dev/proj/repo/img:1"),
    ("quay.io/org/repo", "quay.io/org/repo"),
    ("registry.gitlab.com/group/project/image:latest", "registry.gitlab.com/group/project/image:latest"),
    ("myregistry.azurecr.io/app:v2", "myregistry.azurecr.io/app:v2"),
    ("registry-1.docker.io/library/busybox", "registry-1.docker.io/library/busybox"),  # Go keeps this host
    ("localhost/app", "localhost/app"),
    ("localhost/app:latest", "localhost/app:latest"),
    ("localhost:5000/app", "localhost:5000/app"),
    ("localhost:5000/team/app:dev", "localhost:5000/team/app:dev"),
    ("registry:5000/app", "registry:5000/app"),
    ("127.0.0.1:5000/app", "127.0.0.1:5000/app"),
    ("10.0.0.1/app:tag", "10.0.0.1/app:tag"),
    ("[::1]:5000/app", "[::1]:5000/app"),
    ("[::1]/app", "[::1]/app"),
    ("[fc00::1]/app:tag", "[fc00::1]/app:tag"),
    ("[2001:db8:1:2:3:4:5:6]:5000/team/app", "[2001:db8:1:2:3:4:5:6]:5000/team/app"),
    (f"[2001:db8::]:5000/app@{SHA256}", f"[2001:db8::]:5000/app@{SHA256}"),
    ("MyRegistry/app", "MyRegistry/app"),  # an uppercase first component can only be a host
    ("REGISTRY.EXAMPLE.COM/app", "REGISTRY.EXAMPLE.COM/app"),
    ("xn--n3h.com:18080/app", "xn--n3h.com:18080/app"),
    ("example.com/" + "a" * 255, "example.com/" + "a" * 255),
]

TAGS_AND_DIGESTS = [
    ("app:Latest", "Latest", None),
    ("app:v1.0.0-rc.1", "v1.0.0-rc.1", None),
    ("app:_private", "_private", None),
    ("app:1", "1", None),
    ("app:UPPER_case-1.2", "UPPER_case-1.2", None),
    ("app:" + "a" * 128, "a" * 128, None),
    (f"app@{SHA256}", None, SHA256),
    (f"app@{SHA384}", None, SHA384),
    (f"app@{SHA512}", None, SHA512),
    (f"app:tag@{SHA256}", "tag", SHA256),
    (f"ghcr.io/team/app:v1@{SHA256}", "v1", SHA256),
    (f"localhost:5000/app:dev@{SHA512}", "dev", SHA512),
]

# (input, error kind, part, text the message must contain)
INVALID = [
    # repository path: case
    ("MyApp", "name_contains_uppercase", "path", "repository names must be lowercase: 'MyApp'"),
    ("docker/Docker", "name_contains_uppercase", "path", "'docker/Docker'"),
    ("ghcr.io/Team/app", "name_contains_uppercase", "path", "'Team/app'"),
    ("localhost:5000/App:v1", "name_contains_uppercase", "path", "'App'"),
    ("docker.io/library/Busybox", "name_contains_uppercase", "path", "'library/Busybox'"),
    ("Uppercase:tag", "name_contains_uppercase", "path", "lowercase"),
    # repository path: shape
    ("team//app", "reference_invalid_format", "path", "'team//app' has an empty path component"),
    ("team/", "reference_invalid_format", "path", "'team/' has an empty path component"),
    ("ghcr.io/team//app", "reference_invalid_format", "path", "'team//app'"),
    ("-app", "reference_invalid_format", "path", "'-app' may not start with a separator"),
    ("app-", "reference_invalid_format", "path", "'app-' may not end with a separator"),
    ("team/_app", "reference_invalid_format", "path", "'_app' may not start with a separator"),
    ("-docker/docker", "reference_invalid_format", "path", "'-docker'"),
    ("-docker-/docker", "reference_invalid_format", "path", "'-docker-'"),
    ("____/____", "reference_invalid_format", "path", "'____'"),
    ("dock..er/docker", "reference_invalid_format", "path", "'..'"),
    ("dock_.er/docker", "reference_invalid_format", "path", "'_.'"),
    ("dock-.er/docker", "reference_invalid_format", "path", "'-.'"),
    ("a___b", "reference_invalid_format", "path", "'___'"),
    ("aa/asdf$$^/aa", "reference_invalid_format", "path", "'$'"),
    ("team/app!", "reference_invalid_format", "path", "'!'"),
    ("café", "reference_invalid_format", "path", "'é'"),
    ("team/app:tag:extra", "reference_invalid_format", "path", "at most one ':tag'"),
    # registry host
    ("-docker.io/docker/docker", "reference_invalid_format", "path", "'-docker.io'"),
    ("foo_bar.com:5000/app", "reference_invalid_format", "domain", "'foo_bar.com' contains '_'"),
    ("exa-.com:5000/app", "reference_invalid_format", "domain", "'exa-'"),
    ("registry:abc/app", "reference_invalid_format", "domain", "registry port 'abc'"),
    ("registry:/app", "reference_invalid_format", "domain", "no port number"),
    ("[fe80::1%eth0]:5000/repo", "reference_invalid_format", "domain", "'[fe80::1%eth0]'"),
    ("[fe80::1%@invalidzone]:5000/repo", "reference_invalid_format", "domain", "'[fe80::1%@invalidzone]'"),
    ("[2001:db8:3:4::192.0.2.33]:5000/debian", "reference_invalid_format", "domain", "IPv6"),
    ("fc00::1:5000/debian", "reference_invalid_format", "domain", "brackets"),
    ("[::1]x/app", "reference_invalid_format", "domain", "'x'"),
    ("[1]/app", "reference_invalid_format", "domain", "'[1]' is not an IPv6 address"),
    ("https://github.com/docker/docker", "reference_invalid_format", "domain", "leave out 'https://'"),
    ("[::1]:5000", "reference_invalid_format", "name", "no repository"),
    ("[::1]", "reference_invalid_format", "name", "no repository"),
    # tag
    ("app:.v1", "reference_invalid_format", "tag", "tag may not start with '.': '.v1'"),
    ("app:-v1", "reference_invalid_format", "tag", "tag may not start with '-': '-v1'"),
    ("app:" + "a" * 129, "reference_invalid_format", "tag", "tag is longer than 128 characters"),
    ("app:v1+build", "reference_invalid_format", "tag", "'+'"),
    ("app:", "reference_invalid_format", "tag", "tag after ':' is empty"),
    ("app:vé", "reference_invalid_format", "tag", "'é'"),  # Go's \w is ASCII only
    ("app:v\u0663", "reference_invalid_format", "tag", "'\u0663'"),  # so are its digits
    # digest
    (
        "app@sha256:abc",
        "reference_invalid_format",
        "digest",
        "'sha256:abc' is not a valid digest: sha256 digests have 64 hex characters",
    ),
    ("app@sha256:" + "f" * 34, "digest_invalid_length", "digest", "64 hex characters, not 34"),
    ("app@sha256:" + "f" * 65, "digest_invalid_length", "digest", "not 65"),
    ("app@sha256:" + "g" * 64, "reference_invalid_format", "digest", "hexadecimal"),
    ("app@sha256:" + "F" * 64, "digest_invalid_format", "digest", "lowercase hex"),
    ("app@md5:" + "f" * 32, "digest_unsupported", "digest", "unsupported algorithm 'md5'"),
    ("app@sha256", "reference_invalid_format", "digest", "'<algorithm>:<hex>'"),
    ("app@:" + "f" * 64, "reference_invalid_format", "digest", "algorithm"),
    ("app@", "reference_invalid_format", "digest", "digest after '@' is empty"),
    (f"app@{SHA256}@{SHA256}", "reference_invalid_format", "digest", "is not a valid digest"),
    # whole name
    ("", "reference_invalid_format", "name", "the image reference is empty"),
    (":tag", "reference_invalid_format", "name", "no repository name before the tag"),
    (f"@{SHA256}", "reference_invalid_format", "name", "no repository name before the digest"),
    ("0123456789abcdef" * 4, "name_is_identifier", "name", "a 64-character hex string is an image ID"),
    ("example.com/" + "a" * 256, "name_too_long", "path", "the repository path is longer than 255 characters"),
    ("a/" * 128 + "a", "name_too_long", "path", "longer than 255"),
    ("this_is_not_a_valid_namespace/" + "x" * 250, "name_too_long", "path", "(280 characters)"),
    ("busybox\n", "reference_invalid_format", "reference", "'\\n'"),
    ("busy box", "reference_invalid_format", "reference", "' '"),
    (" busybox", "reference_invalid_format", "reference", "spaces"),
    ("busybox\t:latest", "reference_invalid_format", "reference", "'\\t'"),
    ("busybox\x00", "reference_invalid_format", "reference", "'\\x00'"),
]


@pytest.mark.parametrize(("text", "normalized", "familiar"), DOCKER_HUB)
def test_it_normalizes_docker_hub_shorthand_to_docker_io(text: str, normalized: str, familiar: str) -> None:
    ref = parse_normalized(text)
    assert (ref.domain, str(ref), ref.familiar_string()) == ("docker.io", normalized, familiar)


@pytest.mark.parametrize(("text", "normalized"), OTHER_REGISTRIES)
def test_it_keeps_every_other_registry_exactly_as_written(text: str, normalized: str) -> None:
    ref = parse_normalized(text)
    assert str(ref) == normalized
    assert ref.familiar_string() == normalized
    assert ref.name == f"{ref.domain}/{ref.path}"


@pytest.mark.parametrize(("text", "tag", "digest"), TAGS_AND_DIGESTS)
def test_it_separates_the_tag_and_the_digest_from_the_name(text: str, tag: str | None, digest: str | None) -> None:
    ref = parse_normalized(text)
    assert (ref.tag, ref.digest) == (tag, digest)
    assert str(ref).endswith(text)


@pytest.mark.parametrize(("text", "kind", "part", "message"), INVALID)
def test_it_rejects_bad_references_naming_the_offending_part(text: str, kind: str, part: str, message: str) -> None:
    with pytest.raises(ReferenceError) as caught:
        parse_normalized(text)
    assert (caught.value.kind, caught.value.part) == (kind, part), str(caught.value)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_it_splits_a_registry_host_and_port_from_the_path() -> None:
    ref = parse_normalized(f"{ECR}/team/service:1@{SHA256}")
    assert ref == ImageReference(ECR, "team/service", "1", SHA256)
    assert split_hostname(ref) == (ECR, "team/service")
    assert parse_normalized("[::1]:5000/app").domain == "[::1]:5000"
    assert parse_normalized("localhost/app").domain == "localhost"


def test_it_names_the_repository_without_tag_or_digest() -> None:
    ref = parse_normalized(f"user/app:v1@{SHA256}")
    assert (ref.name, ref.familiar_name) == ("docker.io/user/app", "user/app")
    assert parse_normalized("busybox").familiar_name == "busybox"
    assert parse_normalized("localhost:5000/app").familiar_name == "localhost:5000/app"


@pytest.mark.parametrize("tag", ["latest", "v1", "V1.2.3-rc_1", "_", "a" * 128, "1.0", "sha-abc123", "x-" * 60 + "y"])
def test_it_accepts_tags_docker_accepts(tag: str) -> None:
    validate_tag(tag)


@pytest.mark.parametrize(
    ("tag", "message"),
    [
        ("", "tag after ':' is empty"),
        (".v1", "tag may not start with '.': '.v1'"),
        ("-v1", "tag may not start with '-'"),
        ("a" * 129, "tag is longer than 128 characters"),
        ("v1/x", "contains '/'"),
        ("v1:x", "contains ':'"),
        ("v1 ", "contains ' '"),
        ("vé", "contains 'é'"),
        ("v1\n", "contains '\\n'"),
    ],
)
def test_it_rejects_bad_tags_on_their_own(tag: str, message: str) -> None:
    with pytest.raises(ReferenceError) as caught:
        validate_tag(tag)
    assert (caught.value.kind, caught.value.part) == ("tag_invalid", "tag")
    assert message in str(caught.value)


@pytest.mark.parametrize("digest", [SHA256, SHA384, SHA512])
def test_it_accepts_well_formed_digests(digest: str) -> None:
    validate_digest(digest)


@pytest.mark.parametrize(
    ("digest", "kind", "message"),
    [
        (
            "sha256:abc",
            "digest_invalid_length",
            "'sha256:abc' is not a valid digest: sha256 digests have 64 hex characters",
        ),
        ("sha384:" + "a" * 64, "digest_invalid_length", "sha384 digests have 96 hex characters"),
        ("sha512:" + "a" * 64, "digest_invalid_length", "sha512 digests have 128 hex characters"),
        ("sha256:" + "A" * 64, "digest_invalid_format", "lowercase hex"),
        ("sha256:" + "z" * 64, "digest_invalid_format", "hexadecimal"),
        ("md5:" + "a" * 32, "digest_unsupported", "unsupported algorithm 'md5'"),
        ("SHA256:" + "a" * 64, "digest_invalid_format", "unsupported algorithm 'SHA256'"),
        ("sha256", "digest_invalid_format", "'<algorithm>:<hex>'"),
        ("sha256:", "digest_invalid_format", "hexadecimal"),
        (":" + "a" * 64, "digest_invalid_format", "algorithm"),
        ("", "digest_invalid_format", "empty"),
    ],
)
def test_it_rejects_bad_digests_on_their_own(digest: str, kind: str, message: str) -> None:
    with pytest.raises(ReferenceError) as caught:
        validate_digest(digest)
    assert (caught.value.kind, caught.value.part) == (kind, "digest")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("docker.io", True),
        ("index.docker.io", True),
        ("registry-1.docker.io", True),
        ("registry.hub.docker.com", True),
        ("Docker.IO", True),
        ("ghcr.io", False),
        ("docker.com", False),
        ("localhost:5000", False),
        ("", False),
    ],
)
def test_it_recognizes_docker_hub_by_any_of_its_host_names(domain: str, expected: bool) -> None:
    assert is_docker_hub(domain) is expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("docker.io", "docker.io"),
        ("Index.Docker.IO", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("registry.hub.docker.com", "docker.io"),
        ("docker.io:443", "docker.io:443"),
        ("GHCR.io", "ghcr.io"),
        ("localhost:5000", "localhost:5000"),
        ("", ""),
    ],
)
def test_it_folds_docker_hub_aliases_to_docker_io_and_lowercases_other_hosts(host: str, expected: str) -> None:
    assert normalize_host(host) == expected


def test_the_parser_leaves_docker_hub_aliases_other_than_index_docker_io_as_written() -> None:
    assert parse_normalized("index.docker.io/user/app").domain == "docker.io"
    assert parse_normalized("registry-1.docker.io/user/app").domain == "registry-1.docker.io"
    assert parse_normalized("registry.hub.docker.com/user/app").domain == "registry.hub.docker.com"


def test_the_package_does_not_import_the_go_api() -> None:
    code = "import sys, registries.reference; sys.exit('registries.reference.go_api' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_parse_keeps_names_as_written_without_adding_docker_io() -> None:
    assert parse("busybox") == ImageReference("", "busybox")
    assert parse("test.com:5000") == ImageReference("", "test.com", "5000")
    assert parse("Foo/bar").domain == "Foo"


def test_parse_named_accepts_only_the_full_form_and_says_what_it_should_be() -> None:
    assert str(parse_named("docker.io/library/busybox:1")) == "docker.io/library/busybox:1"
    with pytest.raises(ReferenceError) as caught:
        parse_named("busybox:1")
    assert caught.value.kind == "name_not_canonical"
    assert "'docker.io/library/busybox:1'" in str(caught.value)


def test_parse_docker_ref_adds_latest_and_prefers_the_digest_over_a_tag() -> None:
    assert str(parse_docker_ref("busybox")) == "docker.io/library/busybox:latest"
    assert str(parse_docker_ref(f"busybox@{SHA256}")) == f"docker.io/library/busybox@{SHA256}"
    assert str(parse_docker_ref(f"busybox:1@{SHA256}")) == f"docker.io/library/busybox@{SHA256}"


def test_parse_any_reference_treats_a_bare_image_id_as_a_sha256_digest() -> None:
    image_id = "0123456789abcdef" * 4
    assert parse_any_reference(image_id) == DigestReference(f"sha256:{image_id}")
    assert parse_any_reference(SHA256) == DigestReference(SHA256)
    assert str(parse_any_reference("redis")) == "docker.io/library/redis"


def test_with_tag_and_with_digest_check_only_their_own_syntax() -> None:
    named = with_name("test.com:8000/foo")
    short = "sha256:" + "1" * 37  # long enough for the grammar; only a full parse checks the length
    assert str(with_tag(with_digest(named, short), "TAG5")) == f"test.com:8000/foo:TAG5@{short}"
    with pytest.raises(ReferenceError) as caught:
        with_tag(named, "-foo")
    assert (caught.value.kind, caught.value.part) == ("tag_invalid", "tag")
    with pytest.raises(ReferenceError) as caught:
        with_digest(named, "foo")
    assert (caught.value.kind, caught.value.part) == ("digest_invalid_format", "digest")


def test_with_name_refuses_a_tag_and_says_so() -> None:
    with pytest.raises(ReferenceError) as caught:
        with_name("example.com/repo:tag")
    assert "includes a tag or digest" in str(caught.value)


def test_it_keeps_go_quirks_that_the_docker_daemon_also_has() -> None:
    # A first component that looks like a host but is not a valid one leaves the domain empty.
    assert parse_normalized("foo_bar.com/app") == ImageReference("", "foo_bar.com/app")
    # Go shortens docker.io/foo.bar/app to foo.bar/app, which re-parses as another registry;
    # Docker Hub namespaces cannot contain '.', so no real image is affected.
    ambiguous = parse_normalized("docker.io/foo.bar/app")
    assert ambiguous.familiar_name == "foo.bar/app"
    assert parse_normalized(ambiguous.familiar_name).domain == "foo.bar"


@pytest.mark.parametrize(
    ("reference", "pattern", "expected"),
    [
        ("foo", "foo/**/ba[rz]", False),
        ("foo/any/bat", "foo/**/ba[rz]", False),
        ("foo/a/bar", "foo/**/ba[rz]", True),
        ("foo/c/baz:tag", "foo/**/ba[rz]", True),
        ("foo/c/baz:tag", "foo/*/baz:tag", True),
        ("example.com/foo/c/baz:tag", "*/foo/c/baz", True),
        ("busybox:1", "busy*", True),
        ("team/app", "*", False),  # '*' never crosses '/'
        ("ab/c", "*[^x]*", False),  # Go never backtracks into an earlier star; a regex would say True
    ],
)
def test_it_matches_familiar_names_with_go_glob_rules(reference: str, pattern: str, expected: bool) -> None:
    assert familiar_match(pattern, parse_any_reference(reference)) is expected


@pytest.mark.parametrize("pattern", ["[-x]", "[", "a\\", "[a-]", "[]"])
def test_it_rejects_malformed_match_patterns(pattern: str) -> None:
    with pytest.raises(ReferenceError) as caught:
        familiar_match(pattern, parse_normalized("foo"))
    assert (caught.value.kind, caught.value.part) == ("pattern_invalid", "pattern")


PATHOLOGICAL = {
    "letters then junk": "a" * 10_000 + "!",
    "dashes": "a-" * 5_000 + "!",
    "dots": "a." * 5_000 + "!",
    "slashes": "a/" * 5_000 + "!",
    "uppercase": "A" * 10_000,
    "colons": ("a" * 50 + ":") * 200,
    "bracket": "[" + ":" * 10_000,
    "at signs": "a@" + "a" * 10_000,
    "mixed separators": "a-a_a.a__a---" * 700 + "!",
    "port-like": "1:" * 5_000,
    "long hex": "a@sha256:" + "f" * 10_000 + "g",
    "dashed host": "a" + "-" * 10_000 + "/x!",
    "dotted host": "a" + ".a" * 5_000 + ":1/x!",
    "ipv6": "[" + "a:" * 5_000 + "]:5000/x!",
    "slash colon": ("a/" * 100 + "a:") * 50,
}


@pytest.mark.parametrize("text", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
def test_it_answers_quickly_on_long_pathological_input(text: str) -> None:
    started = time.perf_counter()
    for entry_point in (parse, parse_normalized, parse_any_reference, with_name):
        try:
            entry_point(text)
        except ReferenceError as exc:
            assert len(str(exc)) < 400  # long input is cut in messages
    assert time.perf_counter() - started < 0.5

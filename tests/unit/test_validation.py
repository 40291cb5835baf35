"""Unit tests for registries.validation: the per-kind rules of the registry fields."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registries.validation import ValidationResult, validate_registry_fields

NOW = datetime(2025, 3, 4, 2, 45, tzinfo=UTC)
ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
ECR_US = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
DIGEST = "sha256:" + "b" * 64
PW = "s3cret-Pa55word"


def ecr_password(expiry: datetime) -> str:
    body = {
        "payload": "cGF5bG9hZA==",
        "datakey": "a2V5",
        "version": "2",
        "type": "DATA_KEY",
        "expiration": int(expiry.timestamp()),
    }
    return base64.b64encode(json.dumps(body).encode()).decode()


FRESH = ecr_password(NOW + timedelta(hours=11, minutes=20))
EXPIRED = ecr_password(NOW - timedelta(hours=3, minutes=5))


def check(
    image_name: str = "busybox",
    image_tag: str = "latest",
    registry_url: str = "",
    username: str = "",
    password: str = "",
    **kwargs: object,
) -> ValidationResult:
    return validate_registry_fields(image_name, image_tag, registry_url, username, password, now=NOW, **kwargs)  # type: ignore[arg-type]


def messages(result: ValidationResult) -> list[str]:
    return [m for ms in result.errors.values() for m in ms] + result.warnings


# (id, image_name, image_tag, registry_url, username, password, cleaned name, tag, url, kind)
VALID = [
    ("hub with a blank url", "busybox", "latest", "", "", "", "busybox", "latest", "", "dockerhub"),
    ("hub with docker.io", "busybox", "1.36", "docker.io", "", "", "busybox", "1.36", "", "dockerhub"),
    ("hub with index.docker.io", "user/app", "1", "index.docker.io", "user", PW, "user/app", "1", "", "dockerhub"),
    (
        "hub with the v1 auth key",
        "user/app",
        "1",
        "https://index.docker.io/v1/",
        "user",
        PW,
        "user/app",
        "1",
        "",
        "dockerhub",
    ),
    ("hub with registry-1", "user/app", "1", "registry-1.docker.io", "user", PW, "user/app", "1", "", "dockerhub"),
    ("hub fully qualified", "docker.io/library/busybox", "1", "", "", "", "busybox", "1", "", "dockerhub"),
    ("hub on index.docker.io", "index.docker.io/user/app", "1", "", "", "", "user/app", "1", "", "dockerhub"),
    (
        "hub namespace that looks like a host",
        "docker.io/my.org/app",
        "1",
        "",
        "",
        "",
        "docker.io/my.org/app",
        "1",
        "",
        "dockerhub",
    ),
    (
        "ecr with a directory",
        f"{ECR}/team/app",
        "1.4",
        f"{ECR}/team/",
        "AWS",
        FRESH,
        f"{ECR}/team/app",
        "1.4",
        f"{ECR}/team/",
        "ecr",
    ),
    (
        "ecr url with https and no slash",
        f"{ECR}/team/app",
        "1.4",
        f"https://{ECR}/team",
        "AWS",
        FRESH,
        f"{ECR}/team/app",
        "1.4",
        f"{ECR}/team/",
        "ecr",
    ),
    ("ecr url blank", f"{ECR}/team/app", "1.4", "", "AWS", FRESH, f"{ECR}/team/app", "1.4", f"{ECR}/team/", "ecr"),
    (
        "ecr url just the host",
        f"{ECR}/team/app",
        "1.4",
        ECR,
        "AWS",
        FRESH,
        f"{ECR}/team/app",
        "1.4",
        f"{ECR}/team/",
        "ecr",
    ),
    ("ecr without a directory", f"{ECR}/app", "1.4", ECR, "AWS", FRESH, f"{ECR}/app", "1.4", ECR, "ecr"),
    ("ecr without a directory, slash", f"{ECR}/app", "1.4", f"{ECR}/", "AWS", FRESH, f"{ECR}/app", "1.4", ECR, "ecr"),
    (
        "ecr url in capitals",
        f"{ECR}/a/b/app",
        "1",
        f"https://{ECR.upper()}/a/b/",
        "AWS",
        FRESH,
        f"{ECR}/a/b/app",
        "1",
        f"{ECR}/a/b/",
        "ecr",
    ),
    ("ecr with a stored password", f"{ECR}/app", "1", ECR, "AWS", "", f"{ECR}/app", "1", ECR, "ecr"),
    ("ghcr with a blank url", "ghcr.io/o/app", "v1", "", "me", PW, "ghcr.io/o/app", "v1", "ghcr.io", "ghcr"),
    (
        "ghcr with https and slash",
        "ghcr.io/o/app",
        "v1",
        "https://ghcr.io/",
        "me",
        PW,
        "ghcr.io/o/app",
        "v1",
        "ghcr.io",
        "ghcr",
    ),
    (
        "a generic registry with a port",
        "localhost:5000/app",
        "1",
        "localhost:5000",
        "u",
        PW,
        "localhost:5000/app",
        "1",
        "localhost:5000",
        "generic",
    ),
    (
        "a v2 api suffix",
        "registry.example.com:5000/app",
        "1",
        "https://registry.example.com:5000/v2/",
        "",
        "",
        "registry.example.com:5000/app",
        "1",
        "registry.example.com:5000",
        "generic",
    ),
    ("an ipv6 registry", "[::1]:5000/app", "1", "[::1]:5000", "", "", "[::1]:5000/app", "1", "[::1]:5000", "generic"),
    (
        "a harbor robot",
        "harbor.example.com/p/app",
        "1",
        "harbor.example.com",
        "robot$p+pull",
        PW,
        "harbor.example.com/p/app",
        "1",
        "harbor.example.com",
        "generic",
    ),
    ("a quay robot", "quay.io/org/app", "1", "quay.io", "org+robot", PW, "quay.io/org/app", "1", "quay.io", "quay"),
    (
        "ecr public anonymous",
        "public.ecr.aws/docker/library/busybox",
        "1",
        "public.ecr.aws",
        "",
        "",
        "public.ecr.aws/docker/library/busybox",
        "1",
        "public.ecr.aws",
        "ecr-public",
    ),
    (
        "azure",
        "myreg.azurecr.io/app",
        "1",
        "myreg.azurecr.io",
        "tok",
        PW,
        "myreg.azurecr.io/app",
        "1",
        "myreg.azurecr.io",
        "acr",
    ),
    (
        "artifact registry",
        "europe-west1-docker.pkg.dev/p/r/app",
        "1",
        "europe-west1-docker.pkg.dev",
        "_json_key",
        PW,
        "europe-west1-docker.pkg.dev/p/r/app",
        "1",
        "europe-west1-docker.pkg.dev",
        "google",
    ),
    (
        "a tag moved from a blank tag field",
        "ghcr.io/o/app:1.4",
        "",
        "",
        "",
        "",
        "ghcr.io/o/app",
        "1.4",
        "ghcr.io",
        "ghcr",
    ),
    ("a tag moved over latest", "ghcr.io/o/app:1.4", "latest", "", "", "", "ghcr.io/o/app", "1.4", "ghcr.io", "ghcr"),
    ("a tag given twice the same", "ghcr.io/o/app:1.4", "1.4", "", "", "", "ghcr.io/o/app", "1.4", "ghcr.io", "ghcr"),
    ("a blank tag meaning latest", "busybox", "", "", "", "", "busybox", "latest", "", "dockerhub"),
    ("a tag with a colon typed in front", "busybox", ":1.36", "", "", "", "busybox", "1.36", "", "dockerhub"),
    (
        "a pasted docker pull command",
        "docker pull ghcr.io/o/app:2",
        "",
        "",
        "",
        "",
        "ghcr.io/o/app",
        "2",
        "ghcr.io",
        "ghcr",
    ),
    (
        "a pasted ecr uri",
        f"https://{ECR}/team/app:1.4/",
        "",
        "",
        "AWS",
        FRESH,
        f"{ECR}/team/app",
        "1.4",
        f"{ECR}/team/",
        "ecr",
    ),
    ("surrounding whitespace", "  busybox  ", " 1.36 ", "  ", "", "", "busybox", "1.36", "", "dockerhub"),
]


@pytest.mark.parametrize(
    ("image_name", "image_tag", "registry_url", "username", "password", "name", "tag", "url", "kind"),
    [v[1:] for v in VALID],
    ids=[v[0] for v in VALID],
)
def test_it_accepts_and_normalizes_valid_fields(
    image_name: str,
    image_tag: str,
    registry_url: str,
    username: str,
    password: str,
    name: str,
    tag: str,
    url: str,
    kind: str,
) -> None:
    result = check(image_name, image_tag, registry_url, username, password, password_is_stored=not password)
    assert result.errors == {}
    assert (result.cleaned["image_name"], result.cleaned["image_tag"], result.cleaned["registry_url"]) == (
        name,
        tag,
        url,
    )
    assert result.kind.slug == kind
    assert result.reference is not None and result.reference.tag == tag


# (id, kwargs, field, words the message must contain)
INVALID = [
    ("a blank image name", {"image_name": ""}, "image_name", ["Enter the image name"]),
    ("an image name in capitals", {"image_name": "ghcr.io/Owner/App"}, "image_name", []),
    ("an image name with spaces", {"image_name": "my app"}, "image_name", []),
    ("a digest in the image name", {"image_name": f"ghcr.io/o/app@{DIGEST}"}, "image_name", ["digest", "Image Tag"]),
    (
        "a tag in the name that conflicts",
        {"image_name": "ghcr.io/o/app:1.4", "image_tag": "2.0"},
        "image_name",
        [":1.4", "2.0", "the tag goes in the Image Tag field, not in the image name"],
    ),
    (
        "credentials in the image name",
        {"image_name": "bob:hunter22@ghcr.io/o/app"},
        "image_name",
        ["username or password"],
    ),
    ("an image name that is too long", {"image_name": "ghcr.io/" + "a" * 800}, "image_name", ["limit is 511"]),
    ("a repository path that is too long", {"image_name": "ghcr.io/" + "a" * 300}, "image_name", ["255"]),
    ("a registry host that is too long", {"image_name": "a" * 260 + ".example/app"}, "image_name", ["limit is 255"]),
    ("a host that is neither host nor namespace", {"image_name": "foo_bar.com/app"}, "image_name", ["foo_bar.com"]),
    ("an invalid tag", {"image_tag": "-bad"}, "image_tag", []),
    ("a tag that is too long", {"image_tag": "a" * 129}, "image_tag", []),
    ("a digest in the tag field", {"image_tag": DIGEST}, "image_tag", ["digest"]),
    (
        "credentials in the registry url",
        {"image_name": "ghcr.io/o/app", "registry_url": f"https://bob:{PW}@ghcr.io"},
        "registry_url",
        ["Username and Password fields"],
    ),
    (
        "a user in the registry url",
        {"image_name": "ghcr.io/o/app", "registry_url": "bob@ghcr.io"},
        "registry_url",
        ["username or password"],
    ),
    (
        "a query in the registry url",
        {"image_name": "ghcr.io/o/app", "registry_url": "ghcr.io?x=1"},
        "registry_url",
        ["query"],
    ),
    (
        "a fragment in the registry url",
        {"image_name": "ghcr.io/o/app", "registry_url": "https://ghcr.io/#top"},
        "registry_url",
        ["fragment"],
    ),
    (
        "a space in the registry url",
        {"image_name": "ghcr.io/o/app", "registry_url": "ghcr .io"},
        "registry_url",
        ["space"],
    ),
    (
        "a control character in the registry url",
        {"image_name": "ghcr.io/o/app", "registry_url": "ghcr.io\x00"},
        "registry_url",
        ["control character"],
    ),
    (
        "another scheme in the registry url",
        {"image_name": "ghcr.io/o/app", "registry_url": "ftp://ghcr.io"},
        "registry_url",
        ["ftp://"],
    ),
    (
        "a scheme with no host",
        {"image_name": "ghcr.io/o/app", "registry_url": "https://"},
        "registry_url",
        ["has no host"],
    ),
    (
        "a malformed host",
        {"image_name": "ghcr.io/o/app", "registry_url": "-bad-.example"},
        "registry_url",
        ["-bad-.example"],
    ),
    (
        "a port out of range",
        {"image_name": "localhost:99999/app", "registry_url": "localhost:99999"},
        "registry_url",
        ["65535"],
    ),
    ("a registry url that is too long", {"registry_url": "a" * 513}, "registry_url", ["limit is 512"]),
    (
        "a different registry",
        {"image_name": "quay.io/o/app", "registry_url": "ghcr.io"},
        "registry_url",
        ["ghcr.io", "quay.io"],
    ),
    (
        "a hub image with another registry",
        {"image_name": "owner/app", "registry_url": "ghcr.io"},
        "registry_url",
        ["ghcr.io", "Docker Hub", "ghcr.io/owner/app"],
    ),
    (
        "a registry image with the hub url",
        {"image_name": "ghcr.io/o/app", "registry_url": "docker.io"},
        "registry_url",
        ["Docker Hub", "ghcr.io"],
    ),
    (
        "a path on a ghcr url",
        {"image_name": "ghcr.io/o/app", "registry_url": "ghcr.io/o"},
        "registry_url",
        ["remove /o"],
    ),
    (
        "a path on a hub url",
        {"image_name": "user/app", "registry_url": "docker.io/user"},
        "registry_url",
        ["leave the registry URL blank", "remove /user"],
    ),
    (
        "a wrong ecr directory",
        {"image_name": f"{ECR}/team/app", "registry_url": f"{ECR}/other/"},
        "registry_url",
        [f"{ECR}/team/", "/other/"],
    ),
    (
        "ecr regions that disagree",
        {"image_name": f"{ECR}/app", "registry_url": ECR_US},
        "registry_url",
        ["us-east-1", "eu-west-1"],
    ),
    (
        "ecr accounts that disagree",
        {"image_name": f"{ECR}/app", "registry_url": ECR.replace("1234", "9999")},
        "registry_url",
        ["999956789012", "123456789012"],
    ),
    (
        "an ecr lookalike registry url",
        {"image_name": f"{ECR}/app", "registry_url": f"{ECR}.evil.example"},
        "registry_url",
        [f"{ECR}.evil.example"],
    ),
    (
        "ecr username in lowercase",
        {"image_name": f"{ECR}/app", "username": "aws", "password": FRESH},
        "registry_username",
        ["case-sensitive", "AWS"],
    ),
    (
        "ecr username of another kind",
        {"image_name": f"{ECR}/app", "username": "admin", "password": FRESH},
        "registry_username",
        ["only the username AWS"],
    ),
    (
        "ecr public username in lowercase",
        {"image_name": "public.ecr.aws/o/app", "username": "Aws", "password": PW},
        "registry_username",
        ["case-sensitive"],
    ),
    (
        "an expired ecr password",
        {"image_name": f"{ECR}/app", "username": "AWS", "password": EXPIRED},
        "registry_password",
        ["expired at 2025-03-03 23:40 UTC", "`aws ecr get-login-password --region eu-west-1`"],
    ),
    (
        "an ecr password without a username",
        {"image_name": f"{ECR}/app", "password": FRESH},
        "registry_username",
        ["Enter AWS as the username"],
    ),
    ("an ecr image on another port", {"image_name": f"{ECR}:5000/app"}, "image_name", ["port 443"]),
    ("a username without a password", {"username": "bob"}, "registry_password", ["password"]),
    ("a password without a username", {"password": PW}, "registry_username", ["username"]),
    (
        "a username that is too long",
        {"username": "u" * 256, "password": PW},
        "registry_username",
        ["256", "limit is 255"],
    ),
    (
        "a password that is too long",
        {"username": "u", "password": "p" * 4097},
        "registry_password",
        ["4097", "limit is 4096"],
    ),
    ("a username with a space", {"username": "bob smith", "password": PW}, "registry_username", ["space"]),
]


@pytest.mark.parametrize(("kwargs", "field", "words"), [i[1:] for i in INVALID], ids=[i[0] for i in INVALID])
def test_it_refuses_invalid_fields_with_a_sentence_on_the_right_field(
    kwargs: dict[str, str], field: str, words: list[str]
) -> None:
    result = check(**kwargs)
    assert field in result.errors, result.errors
    text = " ".join(result.errors[field])
    for word in words:
        assert word in text
    for message in result.errors[field]:
        assert message[:1].isupper() or message[:1] in "'\"", message
        assert message.endswith("."), message


def test_a_username_without_a_password_is_fine_when_one_is_stored() -> None:
    assert check(image_name="user/app", username="user", password_is_stored=True).errors == {}


def test_it_does_not_echo_the_password_of_a_registry_url() -> None:
    result = check(image_name="ghcr.io/o/app", registry_url=f"https://bob:{PW}@ghcr.io/")
    assert PW not in " ".join(messages(result))
    assert PW not in " ".join(result.cleaned.values())


# (id, kwargs, words of a warning)
WARNINGS = [
    (
        "a private hub image without the user",
        {"image_name": "app", "username": "bob", "password": PW},
        ["<user>/<image>", "bob/app"],
    ),
    (
        "an ecr password that is not one",
        {"image_name": f"{ECR}/app", "username": "AWS", "password": PW},
        ["aws ecr get-login-password --region eu-west-1"],
    ),
    (
        "an ecr password about to expire",
        {"image_name": f"{ECR}/app", "username": "AWS", "password": ecr_password(NOW + timedelta(minutes=30))},
        ["30 min"],
    ),
    ("an e-mail as hub username", {"image_name": "bob/app", "username": "bob@example.com", "password": PW}, ["e-mail"]),
    (
        "an unusual google username",
        {"image_name": "us-docker.pkg.dev/p/r/app", "username": "bob", "password": PW},
        ["_json_key"],
    ),
    ("a tag moved over latest", {"image_name": "ghcr.io/o/app:1.4", "image_tag": "latest"}, ["moved"]),
    (
        "a password ending in a newline",
        {"username": "bob", "image_name": "bob/app", "password": PW + "\n"},
        ["line break"],
    ),
    ("ecr without credentials", {"image_name": f"{ECR}/app"}, ["AWS credentials"]),
]


@pytest.mark.parametrize(("kwargs", "words"), [w[1:] for w in WARNINGS], ids=[w[0] for w in WARNINGS])
def test_it_warns_without_refusing(kwargs: dict[str, str], words: list[str]) -> None:
    result = check(**kwargs)
    assert result.errors == {}
    text = " ".join(result.warnings)
    for word in words:
        assert word in text


def test_it_returns_the_expiry_of_an_ecr_password() -> None:
    result = check(image_name=f"{ECR}/app", username="AWS", password=FRESH)
    assert result.password_expiry == NOW + timedelta(hours=11, minutes=20)
    assert result.warnings == []


def test_it_returns_the_expiry_of_an_expired_ecr_password_too() -> None:
    result = check(image_name=f"{ECR}/app", username="AWS", password=EXPIRED)
    assert result.password_expiry == NOW - timedelta(hours=3, minutes=5)
    assert "3 h 5 min ago" in result.errors["registry_password"][0]


def test_it_names_the_image_region_in_the_login_command() -> None:
    result = check(image_name=f"{ECR_US}/app", registry_url=ECR_US, username="AWS", password=EXPIRED)
    assert "--region us-east-1" in result.errors["registry_password"][0]


def test_it_uses_the_clock_when_now_is_not_given() -> None:
    result = validate_registry_fields(f"{ECR}/app", "1", "", "AWS", EXPIRED)
    assert "registry_password" in result.errors


def test_it_treats_a_naive_now_as_utc() -> None:
    result = validate_registry_fields(f"{ECR}/app", "1", "", "AWS", FRESH, now=NOW.replace(tzinfo=None))
    assert result.errors == {}


@pytest.mark.parametrize(
    "registry_url", ["registry.hub.docker.com", "https://registry.hub.docker.com", "Registry.Hub.Docker.com/"]
)
def test_it_accepts_registry_hub_docker_com_as_docker_hub(registry_url: str) -> None:
    result = check(image_name="myuser/app", registry_url=registry_url, username="myuser", password=PW)
    assert result.errors == {}
    assert (result.kind.slug, result.cleaned["registry_url"]) == ("dockerhub", "")


def test_it_reports_several_fields_at_once() -> None:
    result = check(image_name="", image_tag="-x", registry_url="ftp://x", username="bob")
    assert set(result.errors) == {"image_name", "image_tag", "registry_url", "registry_password"}
    assert not result.ok


def test_it_detects_gitlab_hosts_from_a_setting() -> None:
    result = check(image_name="registry.corp.example/g/app", extra_hosts={"gitlab": ["registry.corp.example"]})
    assert result.kind.slug == "gitlab"


def test_it_keeps_the_kind_of_the_registry_url_when_the_image_is_invalid() -> None:
    assert check(image_name="", registry_url="ghcr.io").kind.slug == "ghcr"


def test_it_never_raises_on_none_values() -> None:
    result = validate_registry_fields(None, None, None, None, None)  # type: ignore[arg-type]
    assert "image_name" in result.errors


SCENARIOS = [
    {"image_name": f"{ECR}/app", "username": "AWS"},
    {"image_name": f"{ECR}/app", "username": "aws"},
    {"image_name": f"{ECR}/app", "registry_url": ECR_US, "username": "AWS"},
    {"image_name": f"{ECR}/app"},
    {"image_name": "app", "username": "bob"},
    {"image_name": "bob/app", "username": "bob@example.com"},
    {"image_name": "us-docker.pkg.dev/p/r/app", "username": "x"},
    {"image_name": "ghcr.io/o/app:1", "image_tag": "2", "registry_url": "quay.io"},
    {"image_name": "", "registry_url": "ftp://x"},
]
_SECRET = st.text(alphabet=st.characters(codec="ascii", categories=("L", "N", "P", "S")), min_size=4, max_size=60)


@given(_SECRET, st.sampled_from(SCENARIOS), st.sampled_from(["", "\n", " "]))
def test_no_message_ever_contains_the_password(password: str, scenario: dict[str, str], suffix: str) -> None:
    password = "Xq7#" + password  # a marker no message could contain by chance
    secret = password + suffix
    for pw in (secret, ecr_password(NOW - timedelta(hours=1)), ecr_password(NOW + timedelta(minutes=5)), "x" * 4097):
        result = check(password=pw, **scenario)
        for message in messages(result):
            assert pw.strip() not in message
    url_result = check(image_name="ghcr.io/o/app", registry_url=f"https://u:{password}@ghcr.io/")
    for message in messages(url_result):
        assert password not in message


_FIELD = st.one_of(st.text(max_size=80), st.sampled_from(["", "latest", ECR, f"{ECR}/team/", "AWS", "docker.io"]))


@given(_FIELD, _FIELD, _FIELD, _FIELD, _FIELD, st.booleans())
def test_validation_never_raises_and_only_reports_known_fields(
    image_name: str, image_tag: str, registry_url: str, username: str, password: str, stored: bool
) -> None:
    result = check(image_name, image_tag, registry_url, username, password, password_is_stored=stored)
    assert set(result.errors) <= {"image_name", "image_tag", "registry_url", "registry_username", "registry_password"}
    assert all(result.errors.values())
    if result.ok:
        assert result.reference is not None

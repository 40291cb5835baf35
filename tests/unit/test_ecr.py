"""Unit tests for registries.ecr: hosts, passwords, expiry wording, tokens."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registries.ecr import (
    EcrHost,
    describe_expiry,
    format_duration,
    is_ecr_public,
    login_command,
    parse_ecr_host,
    read_password_expiry,
    split_authorization_token,
)

NOW = datetime(2025, 3, 4, 2, 45, tzinfo=UTC)


def ecr_password(expiration: object, **extra: object) -> str:
    """A password shaped like `aws ecr get-login-password` output."""
    body = {
        "payload": "c2VjcmV0LXBheWxvYWQ=",
        "datakey": "ZGF0YWtleQ==",
        "version": "2",
        "type": "DATA_KEY",
        "expiration": expiration,
        **extra,
    }
    return base64.b64encode(json.dumps(body).encode()).decode()


# --- hosts ---------------------------------------------------------------

ECR_HOSTS = [
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com", "123456789012", "us-east-1", False, "amazonaws.com", False),
    ("123456789012.dkr.ecr.eu-west-1.amazonaws.com", "123456789012", "eu-west-1", False, "amazonaws.com", False),
    (
        "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
        "123456789012",
        "us-gov-west-1",
        True,
        "amazonaws.com",
        False,
    ),
    (
        "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
        "123456789012",
        "cn-north-1",
        False,
        "amazonaws.com.cn",
        False,
    ),
    (
        "123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu",
        "123456789012",
        "eusc-de-east-1",
        False,
        "amazonaws.eu",
        False,
    ),
    ("123456789012.dkr-ecr.us-east-1.on.aws", "123456789012", "us-east-1", False, "on.aws", True),
    ("123456789012.dkr-ecr-fips.us-east-1.on.aws", "123456789012", "us-east-1", True, "on.aws", True),
    (
        "123456789012.dkr-ecr.cn-northwest-1.on.amazonwebservices.com.cn",
        "123456789012",
        "cn-northwest-1",
        False,
        "on.amazonwebservices.com.cn",
        True,
    ),
    ("123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov", "123456789012", "us-iso-east-1", False, "c2s.ic.gov", False),
    (
        "123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov",
        "123456789012",
        "us-isob-east-1",
        False,
        "sc2s.sgov.gov",
        False,
    ),
    (
        "123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk",
        "123456789012",
        "eu-isoe-west-1",
        False,
        "cloud.adc-e.uk",
        False,
    ),
    (
        "123456789012.dkr.ecr.us-isof-south-1.csp.hci.ic.gov",
        "123456789012",
        "us-isof-south-1",
        False,
        "csp.hci.ic.gov",
        False,
    ),
    ("123456789012.DKR.ECR.EU-WEST-1.AMAZONAWS.COM", "123456789012", "eu-west-1", False, "amazonaws.com", False),
    ("123456789012.dkr.ecr.eu-west-1.amazonaws.com:443", "123456789012", "eu-west-1", False, "amazonaws.com", False),
]


@pytest.mark.parametrize(
    ("host", "account", "region", "fips", "domain", "dual_stack"), ECR_HOSTS, ids=[h[0] for h in ECR_HOSTS]
)
def test_it_parses_every_partitions_private_ecr_host(
    host: str, account: str, region: str, fips: bool, domain: str, dual_stack: bool
) -> None:
    assert parse_ecr_host(host) == EcrHost(account, region, fips, domain, dual_stack)


NOT_ECR = [
    "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example",
    "evil.example/123456789012.dkr.ecr.us-east-1.amazonaws.com",
    "x123456789012.dkr.ecr.us-east-1.amazonaws.com",
    "12345678901.dkr.ecr.us-east-1.amazonaws.com",
    "1234567890123.dkr.ecr.us-east-1.amazonaws.com",
    "123456789012.dkr.ecr.us-east-1.amazonaws.co",
    "123456789012.dkr.ecr.amazonaws.com",
    "123456789012.dkr.ecr..amazonaws.com",
    "123456789012.ecr.us-east-1.amazonaws.com",
    "123456789012.dkr.ecr.us-east-1.amazonaws.com/team",
    "123456789012.dkr.ecr.us_east_1.amazonaws.com",
    "123456789012.dkr.ecr.us-east-1.amazonaws.com\n",
    "123456789012.dkr.ecr.us-east-1.on.aws.example",
    "api.ecr.us-east-1.amazonaws.com",
    "public.ecr.aws",
    "docker.io",
    "",
    "١٢٣٤٥٦٧٨٩٠١٢.dkr.ecr.us-east-1.amazonaws.com",
]


@pytest.mark.parametrize("host", NOT_ECR)
def test_it_does_not_take_lookalike_hosts_for_private_ecr(host: str) -> None:
    assert parse_ecr_host(host) is None


def test_it_rebuilds_the_canonical_host_from_its_parts() -> None:
    for host, *_ in ECR_HOSTS:
        parsed = parse_ecr_host(host)
        assert parsed is not None
        assert parsed.host == host.lower().removesuffix(":443")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("public.ecr.aws", True),
        ("PUBLIC.ECR.AWS", True),
        ("public.ecr.aws.evil.example", False),
        ("ecr-public.us-east-1.amazonaws.com", False),
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com", False),
        ("", False),
    ],
)
def test_it_recognises_only_the_ecr_public_host_as_ecr_public(host: str, expected: bool) -> None:
    assert is_ecr_public(host) is expected


def test_it_prints_the_login_command_for_a_region() -> None:
    assert login_command("eu-west-1") == "aws ecr get-login-password --region eu-west-1"


# --- passwords -----------------------------------------------------------


def test_it_reads_the_expiry_of_an_ecr_password() -> None:
    expiry = NOW + timedelta(hours=12)
    assert read_password_expiry(ecr_password(int(expiry.timestamp()))) == expiry


def test_it_reads_a_fractional_expiry() -> None:
    assert read_password_expiry(ecr_password(1741056300.5)) == datetime.fromtimestamp(1741056300.5, tz=UTC)


def test_it_ignores_surrounding_whitespace_around_a_pasted_password() -> None:
    password = "  " + ecr_password(1741056300) + "\n"
    assert read_password_expiry(password) == datetime.fromtimestamp(1741056300, tz=UTC)


GOOD = ecr_password(1741056300)

NOT_ECR_PASSWORDS = [
    ("empty", ""),
    ("blank", "   "),
    ("plain text", "hunter2"),
    ("truncated base64", GOOD[: len(GOOD) // 2 + 1]),
    ("truncated on a 4-char boundary", GOOD[: (len(GOOD) // 2) // 4 * 4]),
    ("base64 of garbage bytes", base64.b64encode(b"\xff\xfe\x00garbage").decode()),
    ("base64 of text", base64.b64encode(b"hello world").decode()),
    ("json list", base64.b64encode(b"[1, 2]").decode()),
    ("json number", base64.b64encode(b"1741056300").decode()),
    ("json without expiration", base64.b64encode(b'{"payload": "x", "datakey": "y"}').decode()),
    ("expiration as string", ecr_password("1741056300")),
    ("expiration as boolean", ecr_password(True)),
    ("expiration null", ecr_password(None)),
    ("expiration zero", ecr_password(0)),
    ("expiration negative", ecr_password(-5)),
    ("expiration far beyond year 9999", ecr_password(10**20)),
    ("expiration infinity", base64.b64encode(b'{"expiration": 1e400}').decode()),
    ("expiration NaN", base64.b64encode(b'{"expiration": NaN}').decode()),
    ("huge integer", base64.b64encode(b'{"expiration": ' + b"9" * 5000 + b"}").decode()),
    ("deeply nested json", base64.b64encode(b"[" * 100_000 + b"]" * 100_000).decode()[:16_000]),
    ("urlsafe alphabet", GOOD.replace("+", "-").replace("/", "_") if ("+" in GOOD or "/" in GOOD) else "-_-_"),
    ("non-ascii", "é" + GOOD),
    ("a github token", "ghp_" + "a" * 36),
    ("an ecr authorization token", base64.b64encode(b"AWS:" + GOOD.encode()).decode()),
]


@pytest.mark.parametrize("password", [p for _, p in NOT_ECR_PASSWORDS], ids=[n for n, _ in NOT_ECR_PASSWORDS])
def test_it_returns_none_for_anything_that_is_not_an_ecr_password(password: str) -> None:
    assert read_password_expiry(password) is None


def test_it_returns_none_for_a_non_string_password() -> None:
    assert read_password_expiry(None) is None  # type: ignore[arg-type]
    assert read_password_expiry(b"bytes") is None  # type: ignore[arg-type]


def test_it_never_logs_the_password(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    for _, password in NOT_ECR_PASSWORDS:
        read_password_expiry(password)
    read_password_expiry(GOOD)
    out, err = capsys.readouterr()
    assert (out, err) == ("", "")
    assert caplog.records == []


@given(st.text(max_size=300))
def test_reading_an_expiry_never_raises_on_any_text(text: str) -> None:
    result = read_password_expiry(text)
    assert result is None or result.tzinfo is not None


@given(st.binary(max_size=300))
def test_reading_an_expiry_never_raises_on_base64_of_any_bytes(data: bytes) -> None:
    read_password_expiry(base64.b64encode(data).decode())


@given(
    st.dictionaries(
        st.text(max_size=10),
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10)),
        max_size=5,
    )
)
def test_reading_an_expiry_never_raises_on_any_json_object(body: dict[str, object]) -> None:
    read_password_expiry(base64.b64encode(json.dumps(body).encode()).decode())


# --- expiry wording --------------------------------------------------------


@pytest.mark.parametrize(
    ("expiry", "expected"),
    [
        (NOW + timedelta(hours=11, minutes=20), "expires at 14:05 UTC, in 11 h 20 min"),
        (NOW + timedelta(hours=11, minutes=20, seconds=59), "expires at 14:05 UTC, in 11 h 20 min"),
        (NOW + timedelta(hours=2), "expires at 04:45 UTC, in 2 h"),
        (NOW + timedelta(minutes=7), "expires at 02:52 UTC, in 7 min"),
        (NOW + timedelta(seconds=30), "expires at 02:45 UTC, in less than a minute"),
        (NOW + timedelta(hours=22), "expires at 2025-03-05 00:45 UTC, in 22 h"),
        (NOW + timedelta(days=2, hours=3), "expires at 2025-03-06 05:45 UTC, in 2 d 3 h"),
        (NOW - timedelta(hours=3, minutes=5), "expired 3 h 5 min ago"),
        (NOW - timedelta(seconds=10), "expired less than a minute ago"),
        (NOW, "expired less than a minute ago"),
        (NOW - timedelta(days=1), "expired 1 d ago"),
    ],
)
def test_it_describes_when_a_password_expires(expiry: datetime, expected: str) -> None:
    assert describe_expiry(expiry, NOW) == expected


def test_it_treats_naive_datetimes_as_utc() -> None:
    naive_now = NOW.replace(tzinfo=None)
    assert describe_expiry(naive_now + timedelta(hours=1), naive_now) == "expires at 03:45 UTC, in 1 h"


def test_it_describes_expiry_in_utc_whatever_the_zone_of_now() -> None:
    from datetime import timezone

    paris = timezone(timedelta(hours=1))
    assert describe_expiry(NOW + timedelta(hours=1), NOW.astimezone(paris)) == "expires at 03:45 UTC, in 1 h"


def test_it_describes_against_the_clock_when_now_is_not_given() -> None:
    assert describe_expiry(datetime.now(UTC) + timedelta(hours=5, minutes=1)).endswith("in 5 h")


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "less than a minute"),
        (59, "less than a minute"),
        (60, "1 min"),
        (3600, "1 h"),
        (3660, "1 h 1 min"),
        (86400, "1 d"),
        (-3660, "1 h 1 min"),
    ],
)
def test_it_formats_durations_in_whole_minutes(seconds: float, expected: str) -> None:
    assert format_duration(seconds) == expected


# --- authorization tokens ----------------------------------------------------


def test_it_splits_a_boto3_authorization_token() -> None:
    token = base64.b64encode(b"AWS:" + GOOD.encode()).decode()
    assert split_authorization_token(token) == ("AWS", GOOD)


def test_it_splits_a_moto_authorization_token() -> None:
    token = base64.b64encode(b"AWS:123456789012-auth-token").decode()
    assert split_authorization_token(token) == ("AWS", "123456789012-auth-token")


def test_it_keeps_colons_inside_the_password() -> None:
    token = base64.b64encode(b"AWS:a:b:c").decode()
    assert split_authorization_token(token) == ("AWS", "a:b:c")


@pytest.mark.parametrize(
    "token",
    [
        "not base64!",
        base64.b64encode(b"no-colon-here").decode(),
        base64.b64encode(b":password-without-user").decode(),
        base64.b64encode(b"AWS:").decode(),
        base64.b64encode(b"\xff\xfe").decode(),
        "QVdTOnNlY3JldA",  # truncated padding
    ],
)
def test_it_refuses_a_malformed_authorization_token_without_quoting_it(token: str) -> None:
    with pytest.raises(ValueError) as info:
        split_authorization_token(token)
    assert token not in str(info.value)
    assert "secret" not in str(info.value)

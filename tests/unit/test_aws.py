"""ECR passwords from AWS: error mapping, cache keys and refresh times (pure; the e2e tests use moto)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import botocore.exceptions
import pytest

from registries.aws import (
    _from_botocore,
    _from_client_error,
    cache_key,
    fetch_ecr_password,
    refresh_time,
    region_of,
)
from registries.errors import PullError

HOST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


def client_error(code: str) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": "AKIASECRETLEAK"}}, "GetAuthorizationToken"
    )


@pytest.mark.parametrize(
    ("code", "expected", "words"),
    [
        ("UnrecognizedClientException", "auth_failed", "access key"),
        ("InvalidSignatureException", "auth_failed", "secret access key"),
        ("AccessDeniedException", "auth_failed", "ecr:GetAuthorizationToken"),
        ("ExpiredTokenException", "token_expired", "expired"),
        ("ThrottlingException", "rate_limited", "throttling"),
        ("SomethingNew", "unknown", "SomethingNew"),
    ],
)
def test_aws_refusals_map_to_codes_with_advice(code, expected, words):
    error = _from_client_error(client_error(code), HOST, "eu-west-1")
    assert error.code == expected
    assert words in error.message
    assert "AKIASECRETLEAK" not in error.message


def test_no_credentials_says_where_they_are_looked_for():
    error = _from_botocore(botocore.exceptions.NoCredentialsError(), HOST, "eu-west-1")
    assert error.code == "auth_failed" and "instance role" in error.message


def test_an_unreachable_endpoint_names_the_region():
    exc = botocore.exceptions.EndpointConnectionError(endpoint_url="https://api.ecr.xx-nowhere-1.amazonaws.com")
    error = _from_botocore(exc, HOST, "xx-nowhere-1")
    assert error.code == "registry_unreachable" and "xx-nowhere-1" in error.message


def test_the_region_comes_from_the_host():
    assert region_of(HOST) == "eu-west-1"
    assert region_of("public.ecr.aws") == "us-east-1"
    with pytest.raises(PullError):
        region_of("ghcr.io")


def test_keys_mode_needs_both_parts_before_asking_aws():
    with pytest.raises(PullError) as error:
        fetch_ecr_password(HOST, access_key_id="AKIA", secret_access_key="")
    assert error.value.code == "auth_failed"


def test_the_cache_key_changes_with_any_credential_and_hides_them():
    base = cache_key(HOST, "AKIA1", "secret-1", False)
    assert base != cache_key(HOST, "AKIA1", "secret-2", False)
    assert base != cache_key(HOST, "AKIA2", "secret-1", False)
    assert base != cache_key(HOST, "", "", True)
    assert base == cache_key(HOST.upper(), "AKIA1", "secret-1", False)
    assert "secret-1" not in base and "AKIA1" not in base


def test_a_password_is_refreshed_at_half_its_life():
    fetched = datetime(2026, 1, 1, tzinfo=UTC)
    assert refresh_time(fetched, fetched + timedelta(hours=12)) == fetched + timedelta(hours=6)

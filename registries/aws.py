"""ECR passwords made with boto3, the way a gateway should run unattended.

``fetch_ecr_password`` asks AWS (``ecr:GetAuthorizationToken``; for ECR Public
the ``ecr-public`` client in us-east-1) for a registry password, with either an
access key or boto3's default credential chain (instance role, environment,
``~/.aws``). boto3 honours ``AWS_ENDPOINT_URL_ECR`` / ``AWS_ENDPOINT_URL`` by
itself, so a private endpoint or a test double (moto) needs no code here.

``refresh_time`` says when a cached password should be replaced: at half its
life, as the AWS credential helper does. An expiry already in the past (moto
always answers 2015) is not believed: the documented 12-hour life is assumed
from the moment the password was fetched.

Failures become ``PullError`` with the project's codes and advice; no message
carries a key, a secret or a token.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import boto3
import botocore.config
import botocore.exceptions

from .ecr import ECR_PUBLIC_HOST, is_ecr_public, parse_ecr_host, split_authorization_token
from .errors import PullError

TOKEN_LIFETIME = timedelta(hours=12)
PUBLIC_REGION = "us-east-1"
_BOTO_CONFIG = botocore.config.Config(
    connect_timeout=5, read_timeout=15, retries={"max_attempts": 2, "mode": "standard"}
)


@dataclass(frozen=True)
class EcrPassword:
    username: str
    password: str
    fetched_at: datetime
    expires_at: datetime

    def __repr__(self) -> str:
        return f"EcrPassword(username={self.username!r}, expires_at={self.expires_at.isoformat()})"


def region_of(host: str) -> str:
    """The AWS region an ECR host lives in (ECR Public: us-east-1)."""
    if is_ecr_public(host):
        return PUBLIC_REGION
    parsed = parse_ecr_host(host)
    if parsed is None:
        raise PullError("invalid_reference", f"{host} is not an AWS ECR registry host.")
    return parsed.region


def cache_key(host: str, access_key_id: str, secret_access_key: str, use_chain: bool) -> str:
    """A hash naming (registry, credentials): a changed key or secret never reuses an old token."""
    material = "\0".join((host.lower(), "chain" if use_chain else "keys", access_key_id, secret_access_key))
    return hashlib.sha256(material.encode()).hexdigest()


def refresh_time(fetched_at: datetime, expires_at: datetime) -> datetime:
    """When to fetch a new password: half-way through its life."""
    return fetched_at + (expires_at - fetched_at) / 2


def fetch_ecr_password(
    host: str,
    *,
    access_key_id: str = "",
    secret_access_key: str = "",
    use_chain: bool = False,
    now: datetime | None = None,
) -> EcrPassword:
    """Ask AWS for a registry password for ``host``. Raises PullError."""
    region = region_of(host)
    now = now or datetime.now(UTC)
    if not use_chain and not (access_key_id and secret_access_key):
        raise PullError("auth_failed", "Both the AWS access key ID and the secret access key are needed.")
    session_kwargs = (
        {} if use_chain else {"aws_access_key_id": access_key_id, "aws_secret_access_key": secret_access_key}
    )
    try:
        session = boto3.session.Session(region_name=region, **session_kwargs)
        if is_ecr_public(host):
            client = session.client("ecr-public", config=_BOTO_CONFIG)
            data = client.get_authorization_token()["authorizationData"]
        else:
            client = session.client("ecr", config=_BOTO_CONFIG)
            account = parse_ecr_host(host).account
            data = client.get_authorization_token(registryIds=[account])["authorizationData"][0]
    except botocore.exceptions.BotoCoreError as exc:
        raise _from_botocore(exc, host, region) from None
    except botocore.exceptions.ClientError as exc:
        raise _from_client_error(exc, host, region) from None
    try:
        username, password = split_authorization_token(data["authorizationToken"])
    except (KeyError, ValueError) as exc:
        raise PullError("unknown", f"AWS answered with an unreadable ECR token for {host}: {exc}") from None
    expires_at = data.get("expiresAt")
    if not isinstance(expires_at, datetime) or expires_at.astimezone(UTC) <= now:
        expires_at = now + TOKEN_LIFETIME
    return EcrPassword(username=username, password=password, fetched_at=now, expires_at=expires_at.astimezone(UTC))


def _from_client_error(exc: botocore.exceptions.ClientError, host: str, region: str) -> PullError:
    code = exc.response.get("Error", {}).get("Code", "")
    if code in {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
    }:
        return PullError(
            "auth_failed",
            "AWS rejected the access key: check the AWS access key ID and secret access key (they may have been "
            "deleted or rotated in IAM).",
        )
    if code in {"AccessDeniedException", "AccessDenied"}:
        return PullError(
            "auth_failed",
            f"AWS accepted the credentials but they may not get an ECR password in {region}: grant "
            "ecr:GetAuthorizationToken (and ecr:BatchGetImage, ecr:GetDownloadUrlForLayer on the repository).",
        )
    if code == "ExpiredTokenException":
        return PullError("token_expired", "The AWS session credentials have expired: renew them on the gateway.")
    if code in {"ThrottlingException", "TooManyRequestsException"}:
        return PullError("rate_limited", "AWS is throttling ECR password requests; the pull will try again.")
    return PullError("unknown", f"AWS refused to make an ECR password for {host} ({code or 'no error code'}).")


def _from_botocore(exc: botocore.exceptions.BotoCoreError, host: str, region: str) -> PullError:
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return PullError(
            "auth_failed",
            "No AWS credentials were found on the gateway (no instance role, no AWS_ACCESS_KEY_ID in the worker's "
            "environment, no ~/.aws/credentials). Enter an access key instead, or give the gateway a role.",
        )
    if isinstance(exc, botocore.exceptions.EndpointConnectionError):
        return PullError(
            "registry_unreachable",
            f"The AWS ECR endpoint for region {region} cannot be reached: check the region in {host} and the "
            "gateway's network.",
        )
    if isinstance(exc, (botocore.exceptions.ConnectTimeoutError, botocore.exceptions.ReadTimeoutError)):
        return PullError("registry_unreachable", f"The AWS ECR endpoint for {region} did not answer in time.")
    if isinstance(exc, botocore.exceptions.UnknownEndpointError):
        return PullError("invalid_reference", f"AWS has no ECR endpoint for region {region!r}.")
    return PullError("unknown", f"Getting an ECR password for {host} failed: {type(exc).__name__}.")


__all__ = [
    "ECR_PUBLIC_HOST",
    "EcrPassword",
    "cache_key",
    "fetch_ecr_password",
    "refresh_time",
    "region_of",
]

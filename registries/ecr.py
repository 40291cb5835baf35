"""Amazon ECR: registry hosts, login passwords and authorization tokens.

Pure helpers, no network and no boto3 import:

* ``parse_ecr_host`` recognises a private ECR registry host
  ``<12 digits>.dkr[.-]ecr[-fips].<region>.<partition domain>`` in every AWS
  partition, anchored at both ends so ``...amazonaws.com.evil.example`` is not
  ECR; ``is_ecr_public`` recognises ECR Public (``public.ecr.aws``).
* ``read_password_expiry`` reads the expiry out of the password printed by
  ``aws ecr get-login-password`` (base64 of a JSON object whose
  ``expiration`` is a Unix time); ``describe_expiry`` turns it into words.
* ``split_authorization_token`` splits boto3's ``get_authorization_token``
  token (base64 of ``AWS:<password>``) into username and password.

Nothing here logs, echoes or puts a password into an exception message.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = [
    "ECR_HOST_PATTERN",
    "ECR_PUBLIC_HOST",
    "ECR_USERNAME",
    "PARTITION_DOMAINS",
    "EcrHost",
    "describe_expiry",
    "format_duration",
    "format_utc",
    "is_ecr_public",
    "login_command",
    "parse_ecr_host",
    "read_password_expiry",
    "split_authorization_token",
]

#: The username every ECR password goes with; the registry compares it
#: case-sensitively.
ECR_USERNAME = "AWS"

#: The ECR Public registry host.
ECR_PUBLIC_HOST = "public.ecr.aws"

#: DNS suffixes of the AWS partitions that host ECR registries: commercial,
#: China, European Sovereign Cloud, the dual-stack endpoints (``on.aws`` and
#: its China twin) and the ISO partitions.
PARTITION_DOMAINS: tuple[str, ...] = (
    "amazonaws.com",
    "amazonaws.com.cn",
    "amazonaws.eu",
    "on.aws",
    "on.amazonwebservices.com.cn",
    "c2s.ic.gov",
    "sc2s.sgov.gov",
    "cloud.adc-e.uk",
    "csp.hci.ic.gov",
)

_DOMAIN_ALTERNATIVES = "|".join(re.escape(d) for d in sorted(PARTITION_DOMAINS, key=len, reverse=True))

#: A private ECR registry host (no port). Used with ``fullmatch`` only.
ECR_HOST_PATTERN: re.Pattern[str] = re.compile(
    r"(?P<account>[0-9]{12})"
    r"\.dkr(?P<sep>[.-])ecr(?P<fips>-fips)?"
    r"\.(?P<region>[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)"
    rf"\.(?P<domain>{_DOMAIN_ALTERNATIVES})",
    re.ASCII,
)

# Beyond this a "password" is not an ECR password (real ones are ~2-3 kB);
# refusing early keeps decoding cheap whatever gets pasted.
_MAX_PASSWORD_CHARS = 16_384


@dataclass(frozen=True)
class EcrHost:
    """The parts of a private ECR registry host."""

    account: str
    region: str
    fips: bool
    partition_domain: str
    dual_stack: bool = False

    @property
    def host(self) -> str:
        """The registry host, rebuilt in its canonical lowercase form."""
        sep = "-" if self.dual_stack else "."
        fips = "-fips" if self.fips else ""
        return f"{self.account}.dkr{sep}ecr{fips}.{self.region}.{self.partition_domain}"


_PORT = re.compile(r":[0-9]{1,5}\Z", re.ASCII)


def _strip_port(host: str) -> str:
    """Drop a ``:port`` suffix; ECR answers on 443 only, the caller may check."""
    return _PORT.sub("", host)


def parse_ecr_host(host: str) -> EcrHost | None:
    """Return the account, region and partition of a private ECR host, or None.

    The match is case-insensitive and anchored at both ends: a path, a longer
    domain or a different account length is not ECR. A ``:port`` suffix is
    ignored here (ECR only answers on 443; validation says so).
    """
    if not isinstance(host, str):
        return None
    candidate = _strip_port(host.lower())
    match = ECR_HOST_PATTERN.fullmatch(candidate)
    if match is None:
        return None
    return EcrHost(
        account=match["account"],
        region=match["region"],
        fips=match["fips"] is not None,
        partition_domain=match["domain"],
        dual_stack=match["sep"] == "-",
    )


def is_ecr_public(host: str) -> bool:
    """True for the ECR Public registry host ``public.ecr.aws`` (any case)."""
    return isinstance(host, str) and _strip_port(host.lower()) == ECR_PUBLIC_HOST


def login_command(region: str) -> str:
    """The AWS CLI command that prints a fresh ECR password for ``region``."""
    return f"aws ecr get-login-password --region {region}"


def read_password_expiry(password: str) -> datetime | None:
    """Return when an ``aws ecr get-login-password`` password expires (UTC).

    Returns None when the text is not such a password: not base64, truncated,
    not a JSON object, or without a numeric ``expiration``. Never raises and
    never includes the password in anything it produces.
    """
    try:
        if not isinstance(password, str):
            return None
        text = password.strip()
        if not text or len(text) > _MAX_PASSWORD_CHARS or not text.isascii():
            return None
        raw = base64.b64decode(text, validate=True)
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict):
            return None
        expiration = data.get("expiration")
        # bool is an int subclass; True is not a timestamp.
        if isinstance(expiration, bool) or not isinstance(expiration, (int, float)):
            return None
        if math.isnan(expiration) or expiration <= 0:
            return None
        return datetime.fromtimestamp(expiration, tz=UTC)
    except (ValueError, TypeError, OverflowError, OSError, RecursionError, binascii.Error):
        return None


def _as_utc(moment: datetime) -> datetime:
    """Treat a naive datetime as UTC; convert an aware one to UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def format_duration(seconds: float) -> str:
    """Say a length of time the way the console does: ``11 h 20 min``.

    Whole minutes, rounded down; days appear past 24 hours (``2 d 3 h``);
    under a minute is ``less than a minute``.
    """
    minutes = int(abs(seconds) // 60)
    if minutes == 0:
        return "less than a minute"
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    return f"{mins} min"


def format_utc(moment: datetime, now: datetime | None = None) -> str:
    """``14:05 UTC``, with the date in front when it is not ``now``'s UTC day."""
    moment = _as_utc(moment)
    today = _as_utc(now).date() if now is not None else None
    if today is not None and moment.date() == today:
        return moment.strftime("%H:%M UTC")
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def describe_expiry(expiry: datetime, now: datetime | None = None) -> str:
    """``expires at 14:05 UTC, in 11 h 20 min`` or ``expired 3 h 5 min ago``."""
    now = _as_utc(now) if now is not None else datetime.now(UTC)
    expiry = _as_utc(expiry)
    remaining = (expiry - now).total_seconds()
    if remaining > 0:
        return f"expires at {format_utc(expiry, now)}, in {format_duration(remaining)}"
    return f"expired {format_duration(remaining)} ago"


def split_authorization_token(token: str) -> tuple[str, str]:
    """Split boto3's ``authorizationToken`` (base64 of ``AWS:<password>``).

    Raises ValueError, without quoting the token, when it is not base64 of a
    ``user:password`` pair.
    """
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (ValueError, AttributeError, binascii.Error):
        raise ValueError("The ECR authorization token is not valid base64 text.") from None
    username, sep, password = decoded.partition(":")
    if not sep or not username or not password:
        raise ValueError("The ECR authorization token does not decode to a user:password pair.")
    return username, password

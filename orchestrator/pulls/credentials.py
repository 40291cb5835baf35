"""The credentials a pull (or a check) uses: a stored password, or an ECR password from AWS.

ECR passwords made with AWS credentials are cached in ``EcrTokenCache``,
encrypted, shared by every worker process, and replaced at half their life.
A pasted ECR password that has expired fails fast, before the daemon is asked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from orchestrator.models import ContainerInstance, EcrTokenCache
from registries.aws import cache_key, fetch_ecr_password, refresh_time
from registries.credentials import auth_config, login_host
from registries.ecr import format_utc, login_command, parse_ecr_host
from registries.errors import PullError
from registries.reference import normalize_host

log = logging.getLogger(__name__)


@sensitive_variables("secret_access_key", "cached", "fresh")
def ecr_password(
    host: str, *, access_key_id: str = "", secret_access_key: str = "", use_chain: bool = False, store: bool = True
) -> str:
    """A valid ECR password for ``host``: from the cache, or fresh from AWS (cached only with ``store``).

    Checking a form does not store (validation writes nothing); the pull does.
    """
    key = cache_key(host, access_key_id, secret_access_key, use_chain)
    now = timezone.now()
    cached = EcrTokenCache.objects.filter(key=key, refresh_at__gt=now, expires_at__gt=now).first()
    if cached is not None:
        return cached.password
    fresh = fetch_ecr_password(
        host, access_key_id=access_key_id, secret_access_key=secret_access_key, use_chain=use_chain, now=now
    )
    # The count of these lines is how the tests see the cache work; never log the password itself.
    log.info("ecr: fetched a new authorization token for %s (valid until %s)", host, fresh.expires_at.isoformat())
    if not store:
        return fresh.password
    EcrTokenCache.objects.update_or_create(
        key=key,
        defaults={
            "password": fresh.password,
            "fetched_at": fresh.fetched_at,
            "expires_at": fresh.expires_at,
            "refresh_at": refresh_time(fresh.fetched_at, fresh.expires_at),
        },
    )
    return fresh.password


def expired_password_error(host: str, expired_at: datetime) -> PullError:
    ecr = parse_ecr_host(host)
    region = ecr.region if ecr else "<region>"
    return PullError(
        "token_expired",
        f"The pasted ECR password expired at {format_utc(expired_at)}. Make a new one with "
        f"`{login_command(region)}` and paste it, or let the console generate it from AWS credentials.",
    )


@dataclass(frozen=True)
class Login:
    """What a pull or a check logs in with: a saved instance's values, or the form's with the stored secrets
    folded in. The secrets stay out of its repr."""

    registry_url: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    aws_auth: str = ""
    access_key_id: str = ""
    secret_access_key: str = field(default="", repr=False)
    #: When a pasted ECR password stops working.
    password_expires_at: datetime | None = None
    #: The login host the stored secrets among these were entered for; None when nothing stored is used.
    stored_for: str | None = None

    SECRETS = ("password", "secret_access_key")

    def split(self) -> tuple[dict, dict]:
        """(public fields as JSON, secrets): how a check travels to the agent, the secrets encrypted apart."""
        public = {name: getattr(self, name) for name in self.__dataclass_fields__ if name not in self.SECRETS}
        if self.password_expires_at is not None:
            public["password_expires_at"] = self.password_expires_at.isoformat()
        return public, {name: getattr(self, name) for name in self.SECRETS if getattr(self, name)}

    @classmethod
    def joined(cls, public: dict, secrets: dict) -> Login:
        """The inverse of :meth:`split`."""
        fields = {name: value for name, value in public.items() if name in cls.__dataclass_fields__}
        if fields.get("password_expires_at"):
            fields["password_expires_at"] = datetime.fromisoformat(fields["password_expires_at"])
        return cls(**fields, **{name: str(secrets.get(name, "")) for name in cls.SECRETS})


@sensitive_variables("login", "token")
def resolve(host: str, login: Login, *, store: bool = True) -> tuple[dict | None, tuple[str, ...]]:
    """(auth_config for the Docker SDK, the secrets to scrub from any message) for a pull from ``host``.

    Raises PullError. A stored secret (``login.stored_for`` set) is refused for any other host.
    ``store=False`` (checking a form) leaves the ECR token cache alone.
    """
    if login.stored_for is not None and (login.password or login.secret_access_key):
        _refuse_elsewhere(login.stored_for, host, login.registry_url)
    target = login.registry_url or host
    if login.aws_auth:
        token = ecr_password(
            host,
            access_key_id=login.access_key_id,
            secret_access_key=login.secret_access_key,
            use_chain=login.aws_auth == ContainerInstance.AwsAuth.CHAIN,
            store=store,
        )
        return auth_config(target, "AWS", token), (token, login.secret_access_key)
    expires = login.password_expires_at
    if login.password and expires is not None and expires <= timezone.now():
        raise expired_password_error(host, expires)
    return auth_config(target, login.username, login.password), (login.password,)


def _refuse_elsewhere(stored_for: str, host: str, registry_url: str) -> None:
    """Defence in depth behind the form: the daemon gets a stored secret only for its own host.

    The daemon sends the credentials to the image's registry; the auth config names the registry URL's
    host. Both must be the host the secret was entered for.
    """
    targets = {normalize_host(host)} | ({login_host("", registry_url)} if registry_url.strip() else set())
    if targets != {stored_for}:
        where = " and ".join(sorted(targets))
        raise PullError(
            "credentials_mismatch",
            f"The stored credentials were entered for {stored_for or 'another registry'}, not for {where}, so "
            f"nothing was sent. Edit the instance and enter the password for {where}.",
        )


def for_instance(instance: ContainerInstance, host: str) -> tuple[dict | None, tuple[str, ...]]:
    """The credentials of a saved instance pulling from ``host``."""
    login = Login(
        registry_url=instance.registry_url,
        username=instance.registry_username,
        password=instance.registry_password or "",
        aws_auth=instance.aws_auth,
        access_key_id=instance.aws_access_key_id,
        secret_access_key=instance.aws_secret_access_key or "",
        password_expires_at=instance.registry_password_expires_at,
        stored_for=instance.credentials_host,
    )
    return resolve(host, login)


__all__ = ["Login", "ecr_password", "expired_password_error", "for_instance", "resolve"]

"""Per-kind rules for the container form's registry fields, as one pure function.

``validate_registry_fields`` takes the raw field values and returns a
``ValidationResult``: errors keyed by form field name (``image_name``,
``image_tag``, ``registry_url``, ``registry_username``, ``registry_password``),
warnings, the cleaned values, the registry kind, the parsed reference and, for
ECR, when the password expires. The Django form copies errors onto its fields.

Decisions where a choice was open:

* A tag in the image name (a pasted ``app:1.4``) is moved to Image Tag when
  that field is blank or ``latest`` (or already says the same tag); any other
  tag there is a conflict and an error.
* A digest (``@sha256:...``) in the image name, or in Image Tag, is refused:
  the form and the pull path pin by tag only, and quietly dropping the digest
  would pull a different image than the one the user pinned.
* The registry URL is stored normalized: blank for Docker Hub; for ECR the
  image URI up to the image name (``host/team/`` for ``host/team/app``, just
  ``host`` when the image has no directory); for every other kind the image's
  host as written (port kept). A blank registry URL is filled in the same way.
  ``https://``/``http://``, a trailing ``/`` and a ``/v1/`` or ``/v2/`` API
  suffix are accepted and dropped; other paths are allowed for ECR only.
* Host names compare case-insensitively; the image name keeps the user's case.
* An expired ECR password is an error; one that does not decode as an ECR
  password is a warning (the registry has the last word).

No message ever contains the password, nor the credentials of a registry URL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from registries.decode import (
    MAX_REGISTRY_URL_CHARS,
    RegistryUrl,
    RegistryUrlError,
    ecr_registry_url,
    form_image_name,
    image_host,
    parse_image,
    parse_registry_url,
    strip_pasted,
)
from registries.ecr import (
    ECR_USERNAME,
    format_duration,
    format_utc,
    login_command,
    parse_ecr_host,
    read_password_expiry,
)
from registries.kinds import DOCKER_HUB, ECR, ECR_PUBLIC, GOOGLE, RegistryKind, detect_kind
from registries.reference import ImageReference, ReferenceError, is_docker_hub, validate_tag

__all__ = [
    "MAX_IMAGE_NAME_CHARS",
    "MAX_PASSWORD_CHARS",
    "MAX_REGISTRY_URL_CHARS",
    "MAX_USERNAME_CHARS",
    "ValidationResult",
    "validate_registry_fields",
]

MAX_PATH_CHARS = 255
MAX_HOST_CHARS = 255
#: A 255-character repository path plus its registry host and the slash.
MAX_IMAGE_NAME_CHARS = MAX_PATH_CHARS + 1 + MAX_HOST_CHARS
MAX_USERNAME_CHARS = 255
MAX_PASSWORD_CHARS = 4096
# Raw input cap before parsing: a name plus a pasted tag and digest.
_MAX_RAW_IMAGE_CHARS = MAX_IMAGE_NAME_CHARS + 256

_GOOGLE_USERNAMES = ("oauth2accesstoken", "_json_key", "_json_key_base64")
_BAD_CHARS = re.compile(r"[\s\x00-\x1f\x7f]")


@dataclass
class ValidationResult:
    """What ``validate_registry_fields`` found."""

    errors: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    cleaned: dict[str, str] = field(default_factory=dict)
    kind: RegistryKind = DOCKER_HUB
    reference: ImageReference | None = None
    password_expiry: datetime | None = None

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.errors

    def error(self, field_name: str, message: str) -> None:
        """Add an error to a form field."""
        self.errors.setdefault(field_name, []).append(message)


def _sentence(message: str) -> str:
    """The grammar's message as a sentence: capital first letter, final period."""
    message = message.strip()
    if message[:1].islower():
        message = message[0].upper() + message[1:]
    return message if message.endswith((".", "?", "!")) else message + "."


def _too_long(what: str, value: str, limit: int, detail: str = "") -> str | None:
    if len(value) <= limit:
        return None
    return f"The {what} is {len(value)} characters long; the limit is {limit}{detail}."


def _parse_image(name: str, tag_field: str, result: ValidationResult) -> ImageReference | None:
    """Parse the image name; move a pasted tag into the tag field (see module doc)."""
    if not name:
        result.error("image_name", "Enter the image name, e.g. busybox or registry.example.com:5000/team/app.")
        return None
    if len(name) > _MAX_RAW_IMAGE_CHARS:
        detail = f" (a repository path of up to {MAX_PATH_CHARS} characters plus its registry host)"
        result.error("image_name", _too_long("image name", name, MAX_IMAGE_NAME_CHARS, detail) or "")
        return None
    at = name.find("@")
    if at != -1 and "/" in name[at:]:
        result.error(
            "image_name",
            "The image name must not contain a username or password; put them in the Username and Password fields.",
        )
        return None
    try:
        reference = parse_image(name)
    except ReferenceError as exc:
        result.error("image_name", _sentence(str(exc)))
        return None
    if message := _too_long("registry host in the image name", reference.domain, MAX_HOST_CHARS):
        result.error("image_name", message)
        return None
    if reference.digest:
        result.error(
            "image_name",
            f"The image name ends with a digest (@{reference.digest.split(':', 1)[0]}:...). Images are pinned by "
            "tag here: remove the digest from the image name and put the tag in the Image Tag field.",
        )
        return None
    if reference.tag:
        if tag_field in ("", "latest", reference.tag):
            if tag_field == "latest" and reference.tag != "latest":
                result.warnings.append(f"The tag {reference.tag} was moved from the image name to the Image Tag field.")
            result.cleaned["image_tag"] = reference.tag
        else:
            result.error(
                "image_name",
                f"The image name ends with the tag :{reference.tag} but the Image Tag field says {tag_field}; "
                "the tag goes in the Image Tag field, not in the image name.",
            )
            return None
    return reference


def _check_tag(tag: str, result: ValidationResult) -> None:
    if tag.startswith(("sha256:", "@")):
        result.error("image_tag", "Image Tag takes a tag such as 1.4 or latest; pinning by digest is not supported.")
        return
    try:
        validate_tag(tag)
    except ReferenceError as exc:
        result.error("image_tag", _sentence(str(exc)))


def _check_hosts(reference: ImageReference, host: str, url: RegistryUrl, result: ValidationResult) -> bool:
    """The registry URL must name the image's registry; name both when not."""
    image_is_hub = is_docker_hub(reference.domain)
    if image_is_hub and is_docker_hub(url.host):
        return True
    if not image_is_hub and url.host.lower() == reference.domain.lower():
        return True
    image_ecr, url_ecr = parse_ecr_host(reference.domain), parse_ecr_host(url.host)
    if image_ecr and url_ecr and image_ecr.account == url_ecr.account and image_ecr.region != url_ecr.region:
        result.error(
            "registry_url",
            f"The registry URL is in region {url_ecr.region} but the image is in region {image_ecr.region}; "
            f"both must be the same ECR registry ({url.host} vs {host}).",
        )
        return False
    where = "Docker Hub" if image_is_hub else host
    hint = f" To pull from {url.host}, write the image name as {url.host}/{reference.path}." if image_is_hub else ""
    result.error(
        "registry_url",
        f"The registry URL points to {'Docker Hub' if is_docker_hub(url.host) else url.host} but the image "
        f"is on {where}; both must name the same registry.{hint}",
    )
    return False


def _clean_registry_url(
    reference: ImageReference, host: str, url: RegistryUrl | None, kind: RegistryKind, result: ValidationResult
) -> None:
    """Check the registry URL against the image and store its normalized form."""
    if url is not None and not _check_hosts(reference, host, url, result):
        return
    if kind is DOCKER_HUB:
        if url is not None and url.path:
            result.error(
                "registry_url",
                f"For Docker Hub leave the registry URL blank (the account goes in the image name, "
                f"e.g. user/app); remove /{url.path}.",
            )
            return
        result.cleaned["registry_url"] = ""
        return
    if kind is ECR:
        expected = ecr_registry_url(host, reference.path)
        directory = reference.path.rpartition("/")[0]
        if url is not None and url.path not in ("", directory):
            result.error(
                "registry_url",
                f"For ECR the registry URL is the image URI up to the image name: {expected}. "
                f"Its path /{url.path}/ does not match the image's directory "
                f"{directory + '/' if directory else '(the image has none)'}.",
            )
            return
        result.cleaned["registry_url"] = expected
        return
    if url is not None and url.path:
        result.error(
            "registry_url", f"The registry URL of {kind.label} is just the host, e.g. {host}; remove /{url.path}."
        )
        return
    result.cleaned["registry_url"] = host


def _check_credentials(
    username: str, password: str, stored: bool, kind: RegistryKind, result: ValidationResult
) -> None:
    if message := _too_long("username", username, MAX_USERNAME_CHARS):
        result.error("registry_username", message)
    elif _BAD_CHARS.search(username):
        result.error("registry_username", "The username contains a space or a control character.")
    if message := _too_long("password", password, MAX_PASSWORD_CHARS):
        result.error("registry_password", message)
    elif password and password != password.strip():
        result.warnings.append("The password begins or ends with a space or a line break; it is sent exactly as typed.")
    has_password = bool(password) or stored
    if username and not has_password:
        result.error("registry_password", "Enter the password that goes with this username, or clear the username.")
    if password and not username:
        expected = f"Enter {ECR_USERNAME} as the username" if kind in (ECR, ECR_PUBLIC) else "Enter the username"
        result.error("registry_username", f"{expected} that goes with this password, or clear the password.")
    if kind in (ECR, ECR_PUBLIC) and username and username != ECR_USERNAME:
        if username.lower() == ECR_USERNAME.lower():
            result.error(
                "registry_username",
                f"The username must be {ECR_USERNAME} in capitals: ECR compares it case-sensitively.",
            )
        else:
            result.error(
                "registry_username",
                f"{kind.label} accepts only the username {ECR_USERNAME}, with the password from "
                f"`aws {'ecr-public' if kind is ECR_PUBLIC else 'ecr'} get-login-password`.",
            )
    if kind is DOCKER_HUB and "@" in username:
        result.warnings.append("Docker Hub logs in with the username, not the e-mail address.")
    if kind is GOOGLE and username and username not in _GOOGLE_USERNAMES:
        result.warnings.append(
            "Google Artifact Registry expects the username oauth2accesstoken, _json_key or _json_key_base64."
        )


def _check_ecr_password(password: str, region: str, now: datetime, result: ValidationResult) -> None:
    expiry = read_password_expiry(password)
    command = login_command(region)
    if expiry is None:
        result.warnings.append(f"The password does not look like one from `{command}`; ECR will refuse anything else.")
        return
    result.password_expiry = expiry
    if expiry <= now:
        result.error(
            "registry_password",
            f"This ECR password expired at {format_utc(expiry, now)}, {format_duration((now - expiry).total_seconds())}"
            f" ago; make a new one with `{command}`.",
        )
    elif expiry - now < timedelta(hours=1):
        result.warnings.append(
            f"This ECR password expires in {format_duration((expiry - now).total_seconds())}; "
            f"a pull after that needs a new one from `{command}`."
        )


def validate_registry_fields(
    image_name: str,
    image_tag: str,
    registry_url: str,
    username: str,
    password: str,
    *,
    password_is_stored: bool = False,
    now: datetime | None = None,
    extra_hosts: Mapping[str, Iterable[str]] | None = None,
) -> ValidationResult:
    """Check the registry fields of the container form; never raises.

    ``password_is_stored``: the instance already has a password and a blank
    password field means "keep it". ``now`` (default: the clock) decides
    whether an ECR password has expired. ``extra_hosts`` is passed to
    ``detect_kind`` (e.g. GitLab hosts of your own).
    """
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    name = strip_pasted(image_name or "")
    tag_field = (image_tag or "").strip().removeprefix(":")
    raw_url = (registry_url or "").strip()
    user = (username or "").strip()
    password = password or ""
    result = ValidationResult(
        cleaned={"image_name": name, "image_tag": tag_field or "latest", "registry_url": raw_url.rstrip("/")}
    )
    result.cleaned["registry_username"] = user

    url, url_error = None, False
    try:
        url = parse_registry_url(raw_url)
    except RegistryUrlError as exc:
        url_error = True
        result.error("registry_url", str(exc))
        result.cleaned["registry_url"] = ""
    reference = _parse_image(name, tag_field, result)
    _check_tag(result.cleaned["image_tag"], result)

    if reference is not None:
        result.kind = detect_kind(reference.domain, extra_hosts=extra_hosts)
        host = image_host(name, reference)
        result.cleaned["image_name"] = form_image_name(reference, host)
        if not url_error:
            _clean_registry_url(reference, host, url, result.kind, result)
        ecr = parse_ecr_host(reference.domain)
        if ecr is not None and ":" in host and not host.endswith(":443"):
            result.error("image_name", "ECR registries answer on port 443 only; remove the port from the image name.")
        if result.kind is DOCKER_HUB and user and reference.path.startswith("library/"):
            short = reference.path.removeprefix("library/")
            result.warnings.append(
                f"{short} names the official Docker Hub image library/{short}; private images live under "
                f"the account name (<user>/<image>), e.g. {user}/{short}."
            )
        if ecr is not None and password:
            _check_ecr_password(password, ecr.region, now, result)
        if not result.errors.get("image_name") and not result.errors.get("image_tag"):
            result.reference = replace(reference, tag=result.cleaned["image_tag"], digest=None)
    elif url is not None:
        result.kind = detect_kind(url.host, extra_hosts=extra_hosts)

    _check_credentials(user, password, password_is_stored, result.kind, result)
    if result.kind is ECR and not user and not password and not password_is_stored:
        result.warnings.append("No credentials: the worker will ask AWS for a token with its own AWS credentials.")
    return result

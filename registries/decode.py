"""Turn a pasted image URI into the container form's registry fields.

``decode_uri("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app:1.4")``
gives image name ``123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app``,
tag ``1.4``, registry URL ``123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/``
and username ``AWS``. What people paste is forgiven: surrounding whitespace
and quotes, a leading ``docker pull`` (with its options), ``https://`` or
``http://`` and a trailing ``/``. Anything the reference grammar refuses
raises ``ReferenceError`` with the grammar's message.

``parse_registry_url`` splits the Registry URL field the same forgiving way.

Registry URL per kind (the same rule the form's validation stores):

* Docker Hub: blank.
* ECR private: the URI before the image's last path component --
  ``host/team/`` for ``host/team/app``; just ``host`` when the image has no
  directory (``host/app``), since a lone trailing slash says nothing.
* Everything else: the host as written, port included.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace

from registries.ecr import parse_ecr_host
from registries.kinds import detect_kind
from registries.reference import (
    DEFAULT_DOMAIN,
    ImageReference,
    ReferenceError,
    is_docker_hub,
    normalize_host,
    parse_normalized,
)

__all__ = [
    "MAX_REGISTRY_URL_CHARS",
    "DecodedImage",
    "RegistryUrl",
    "RegistryUrlError",
    "decode_uri",
    "ecr_registry_url",
    "form_image_name",
    "image_host",
    "parse_image",
    "parse_registry_url",
    "strip_pasted",
]

_PULL_COMMAND = re.compile(r"(?:sudo\s+)?(?:docker|podman|nerdctl)\s+(?:image\s+)?pull\s+", re.IGNORECASE)
# ``docker pull`` options: flags without a value, and --platform with one.
_PULL_OPTION = re.compile(r"(?:--platform(?:=|\s+)\S+|--(?:all-tags|quiet|disable-content-trust)(?:=\S+)?|-[aq])\s+")
MAX_REGISTRY_URL_CHARS = 512
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_URL_HOST = re.compile(
    rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-f:.]+\])(?::(?P<port>[0-9]{{1,5}}))?", re.ASCII | re.IGNORECASE
)
_ANY_SCHEME = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*)://", re.ASCII | re.IGNORECASE)
_BAD_URL_CHARS = re.compile(r"[\s\x00-\x1f\x7f]")
_SCHEME = re.compile(r"https?://", re.IGNORECASE)
_QUOTES = "\"'`"


@dataclass(frozen=True)
class DecodedImage:
    """The form fields a pasted image URI fills in."""

    image_name: str
    image_tag: str
    digest: str | None
    registry_url: str
    username: str
    kind: str
    #: The image's registry host, lowercase, port kept (``docker.io`` for Hub).
    registry_host: str

    def as_form_fields(self) -> dict[str, str]:
        """The values keyed by the form's field names."""
        return {
            "image_name": self.image_name,
            "image_tag": self.image_tag,
            "registry_url": self.registry_url,
            "registry_username": self.username,
        }

    def as_dict(self) -> dict[str, str | None]:
        """Every field, for JSON."""
        return asdict(self)


def strip_pasted(text: str) -> str:
    """Remove what surrounds a pasted reference: whitespace, quotes,
    ``docker pull`` and its options, ``https://`` or ``http://``, trailing ``/``.
    """
    value = (text or "").strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in _QUOTES:
        value = value[1:-1].strip()
    match = _PULL_COMMAND.match(value)
    if match:
        value = value[match.end() :]
        while option := _PULL_OPTION.match(value):
            value = value[option.end() :]
        value = value.strip()
    scheme = _SCHEME.match(value)
    if scheme:
        value = value[scheme.end() :]
    return value.rstrip("/").strip()


def image_host(text: str, reference: ImageReference) -> str:
    """The registry host as the user wrote it in ``text`` (``docker.io`` for Hub)."""
    if is_docker_hub(reference.domain):
        return DEFAULT_DOMAIN
    written = text.split("/", 1)[0]
    if written.lower() == reference.domain.lower():
        return written
    return reference.domain


def ecr_registry_url(host: str, path: str) -> str:
    """ECR's registry URL: ``host/dir/`` for ``host/dir/app``, ``host`` for ``host/app``."""
    directory, sep, _ = path.rpartition("/")
    return f"{host}/{directory}/" if sep else host


def form_image_name(reference: ImageReference, host: str) -> str:
    """The Image Name field for a reference: Docker Hub's familiar name
    (``busybox``, ``user/app``) unless that would read as another registry
    (``docker.io/my.org/app`` stays whole), else ``host/path`` as written.
    """
    if not is_docker_hub(reference.domain):
        return f"{host}/{reference.path}"
    hub = replace(reference, domain=DEFAULT_DOMAIN, tag=None, digest=None)
    familiar = hub.familiar_name
    try:
        if parse_normalized(familiar).name == hub.name:
            return familiar
    except ReferenceError:
        pass
    return reference.name


def parse_image(text: str) -> ImageReference:
    """``parse_normalized``, refusing the one reading Docker cannot pull.

    For ``foo_bar.com/app`` the grammar keeps the whole name as a path and
    leaves the registry empty (Go does the same); no registry serves that, so
    it is refused here with a message naming the bad host.
    """
    reference = parse_normalized(text)
    if not reference.domain:
        first = reference.path.split("/", 1)[0]
        raise ReferenceError(
            f"{first!r} is neither a valid registry host nor a Docker Hub namespace; "
            "host names use letters, digits, '-' and '.'",
            kind="reference_invalid_format",
            part="domain",
        )
    return reference


def decode_uri(text: str) -> DecodedImage:
    """Decode a pasted image URI into form fields; ReferenceError if it is invalid."""
    cleaned = strip_pasted(text)
    reference = parse_image(cleaned)
    host = image_host(cleaned, reference)
    kind = detect_kind(reference.domain)
    image_name = form_image_name(reference, host)
    if is_docker_hub(reference.domain):
        registry_url = ""
    elif parse_ecr_host(reference.domain) is not None:
        registry_url = ecr_registry_url(host, reference.path)
    else:
        registry_url = host
    if reference.tag:
        tag = reference.tag
    elif reference.digest:
        tag = ""
    else:
        tag = "latest"
    return DecodedImage(
        image_name=image_name,
        image_tag=tag,
        digest=reference.digest,
        registry_url=registry_url,
        username=kind.fixed_username or "",
        kind=kind.slug,
        registry_host=normalize_host(reference.domain),
    )


class RegistryUrlError(ValueError):
    """A registry URL the form refuses; the message never quotes credentials."""


@dataclass(frozen=True)
class RegistryUrl:
    """A registry URL split up: ``host`` as written (port kept), ``path`` without
    surrounding slashes ("" when none; a ``/v1/`` or ``/v2/`` API suffix is none).
    """

    host: str
    path: str


def parse_registry_url(text: str) -> RegistryUrl | None:
    """Parse the Registry URL field; None when blank, RegistryUrlError when refused.

    Accepted: ``host[:port][/path]`` with an optional ``https://``/``http://``
    and trailing ``/``. Refused, with a sentence for the form: credentials
    (``user:pw@``: nothing after an ``@`` is ever quoted back), a query or
    fragment, spaces or control characters, another scheme, a bad host or port.
    """
    raw = (text or "").strip()
    if not raw:
        return None
    if len(raw) > MAX_REGISTRY_URL_CHARS:
        raise RegistryUrlError(
            f"The registry URL is {len(raw)} characters long; the limit is {MAX_REGISTRY_URL_CHARS}."
        )
    if "@" in raw:
        raise RegistryUrlError(
            "The registry URL must not contain a username or password; put them in the Username and "
            "Password fields and enter just the registry host."
        )
    if _BAD_URL_CHARS.search(raw):
        raise RegistryUrlError(
            "The registry URL contains a space or a control character; enter just the registry host."
        )
    rest = raw
    if scheme := _ANY_SCHEME.match(raw):
        if scheme["scheme"].lower() not in ("http", "https"):
            raise RegistryUrlError(
                f"The registry URL starts with {scheme['scheme']}://; use https:// or no scheme at all, "
                "e.g. registry.example.com:5000."
            )
        rest = raw[scheme.end() :]
    if "?" in rest or "#" in rest:
        raise RegistryUrlError(
            "The registry URL must not have a query (?...) or a fragment (#...); enter just the registry host."
        )
    host, _, path = rest.partition("/")
    if not host:
        raise RegistryUrlError("The registry URL has no host; enter a host such as registry.example.com:5000.")
    match = _URL_HOST.fullmatch(host)
    if match is None:
        raise RegistryUrlError(
            f"The registry URL's host {host!r} is not a valid host name; enter a host such as "
            "registry.example.com:5000."
        )
    if match["port"] is not None and not 0 < int(match["port"]) <= 65535:
        raise RegistryUrlError(f"The port in {host} must be between 1 and 65535.")
    path = path.strip("/")
    if "//" in path:
        raise RegistryUrlError("The registry URL's path contains an empty part (//).")
    return RegistryUrl(host, "" if path in ("v1", "v2") else path)

"""Docker image references, parsed exactly as Go's distribution/reference does.

The grammar and every decision (what counts as a registry host, when ``docker.io/library/`` is added,
which error a bad input produces) mirror github.com/distribution/reference (regexp.go, reference.go,
normalize.go) and go-digest v1.0.0, so that what we accept is exactly what the Docker daemon accepts.
Each Go sentinel error becomes ``ReferenceError.kind``; the message, by contrast, is ours (see
``messages``): it names the offending part of the input in words an operator who never read the
grammar can act on.

Go quirks kept on purpose (the daemon has them too): a lone ``localhost:5000`` or ``example.com`` is
a Hub repository with a tag, not a registry; ``registry-1.docker.io`` is not rewritten to docker.io;
a first component that looks like a host but is not a valid one (``foo_bar.com/app``) leaves the
domain empty; and the familiar form of ``docker.io/foo.bar/app`` is ``foo.bar/app``, which re-parses
as a different registry (Docker Hub namespaces cannot contain '.', so this never names a real image).

Docker Hub answers to several host names. The parser re-spells only ``index.docker.io`` (as Go
does); every other alias in ``DOCKER_HUB_HOSTS`` stays as written in a parsed reference. Deciding
whether a host, a registry URL or a login is Docker Hub is a separate question, answered everywhere
by ``is_docker_hub`` and ``normalize_host`` over that one set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import (
    _DIGEST_HEX_LENGTHS,
    DIGEST_INVALID_FORMAT,
    DIGEST_INVALID_LENGTH,
    DIGEST_UNSUPPORTED,
    NAME_CONTAINS_UPPERCASE,
    NAME_EMPTY,
    NAME_IS_IDENTIFIER,
    NAME_TOO_LONG,
    NAME_TOTAL_LENGTH_MAX,
    REFERENCE_INVALID_FORMAT,
    TAG_INVALID,
    TAG_LENGTH_MAX,
    ReferenceError,
    _q,
)
from .messages import _digest_problem, _invalid, _tag_problem

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
#: Every host name of Docker Hub's registry, lowercase, without port. The one list in ``registries``:
#: credentials, registry kinds, the form's validation and the URI decoder all ask ``is_docker_hub``.
#: The daemon itself folds only index.docker.io (moby's normalizeIndexName); the other two are Hub's
#: real v2 endpoint and its old API host, which operators paste as a Registry URL. A port is never
#: stripped, as in the daemon, for which ``docker.io:443`` is some other registry.
DOCKER_HUB_HOSTS = frozenset({DEFAULT_DOMAIN, LEGACY_DEFAULT_DOMAIN, "registry-1.docker.io", "registry.hub.docker.com"})

# regexp.go, piece by piece. re.ASCII keeps \w to [A-Za-z0-9_] as in Go's RE2, and every pattern is
# used with fullmatch() because Python's "$" would also accept a trailing newline.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_REMOTE_NAME = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[(?:[a-fA-F0-9:]+)\])"
_DOMAIN_AND_PORT = rf"{_HOST}(?::[0-9]+)?"
_TAG = rf"[\w][\w.-]{{0,{TAG_LENGTH_MAX - 1}}}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
REFERENCE_PATTERN = rf"((?:{_DOMAIN_AND_PORT}/)?{_REMOTE_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?"

_REFERENCE_RE = re.compile(REFERENCE_PATTERN, re.ASCII)
_NAME_RE = re.compile(rf"(?:({_DOMAIN_AND_PORT})/)?({_REMOTE_NAME})", re.ASCII)
_TAG_RE = re.compile(_TAG, re.ASCII)
_DIGEST_RE = re.compile(_DIGEST, re.ASCII)
_IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}")
# go-digest v1.0.0's own digest syntax, looser than the reference grammar's.
_GO_DIGEST_RE = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_LOWER_HEX_RE = re.compile(r"[a-f0-9]+")


@dataclass(frozen=True)
class ImageReference:
    """A parsed reference. ``domain`` is '' only for names Go's Parse leaves without one."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def familiar_name(self) -> str:
        """The short form Docker shows: 'busybox', 'user/app', 'ghcr.io/team/app'."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        remainder = self.path.removeprefix(OFFICIAL_REPO_PREFIX)
        # Only a single-component library image drops its prefix, as Go's familiarizeName does.
        return remainder if "/" not in remainder else self.path

    def __str__(self) -> str:
        return _render(self.name, self.tag, self.digest)

    def familiar_string(self) -> str:
        return _render(self.familiar_name, self.tag, self.digest)


@dataclass(frozen=True)
class DigestReference:
    """A bare digest, as parse_any_reference returns for 'sha256:...' or a 64-hex image ID."""

    digest: str

    def __str__(self) -> str:
        return self.digest

    def familiar_string(self) -> str:
        return self.digest


def _render(name: str, tag: str | None, digest: str | None) -> str:
    return name + (f":{tag}" if tag is not None else "") + (f"@{digest}" if digest is not None else "")


def parse(text: str) -> ImageReference:
    """Go's Parse: the grammar alone, without Docker Hub normalization."""
    return _parse(text, text)


def parse_normalized(text: str) -> ImageReference:
    """Go's ParseNormalizedNamed: 'busybox' -> docker.io/library/busybox; tag and/or digest allowed."""
    if _IDENTIFIER_RE.fullmatch(text):
        raise ReferenceError(
            f"a 64-character hex string is an image ID, not a repository name: {_q(text)}",
            kind=NAME_IS_IDENTIFIER,
            part="name",
        )
    domain, remainder = _split_docker_domain(text)
    # Go checks case up to the first ':', which may sit inside a digest; we keep that exactly.
    remote = remainder.split(":", 1)[0]
    if _go_lower(remote) != remote:
        raise _invalid(NAME_CONTAINS_UPPERCASE, text)
    return _parse(f"{domain}/{remainder}", text)


def validate_tag(tag: str) -> None:
    if not _TAG_RE.fullmatch(tag):
        raise ReferenceError(_tag_problem(tag) or f"invalid tag {_q(tag)}", kind=TAG_INVALID, part="tag")


def validate_digest(digest: str) -> None:
    """go-digest's Validate: 'algorithm:hex' with sha256/sha384/sha512 and their exact hex length."""
    kind = _go_digest_error(digest)
    if kind is not None:
        raise ReferenceError(_digest_problem(digest) or f"invalid digest {_q(digest)}", kind=kind, part="digest")


def is_docker_hub(host: str) -> bool:
    """True for any of Docker Hub's host names, in any case; '' (no registry) is not one."""
    return host.lower() in DOCKER_HUB_HOSTS


def normalize_host(host: str) -> str:
    """A registry host as credentials and comparisons see it: lowercase, Docker Hub as 'docker.io'."""
    lowered = host.lower()
    return DEFAULT_DOMAIN if lowered in DOCKER_HUB_HOSTS else lowered


def registry_of(text: str) -> str:
    """The registry host a reference pulls from ("docker.io" for Docker Hub).

    Best effort for text the grammar refuses, so an error message can still name a host.
    """
    try:
        return parse_normalized(text).domain
    except ReferenceError:
        first, slash, _ = text.partition("/")
        return first if slash and ("." in first or ":" in first or first == "localhost") else DEFAULT_DOMAIN


def _parse(s: str, original: str) -> ImageReference:
    # `s` is what Go parses (possibly with docker.io/ prepended); errors are explained on `original`.
    if not s:
        raise _invalid(NAME_EMPTY, original)
    match = _REFERENCE_RE.fullmatch(s)
    if match is None:
        lowered = _go_lower(s)
        uppercase = lowered != s and _REFERENCE_RE.fullmatch(lowered) is not None
        raise _invalid(NAME_CONTAINS_UPPERCASE if uppercase else REFERENCE_INVALID_FORMAT, original)
    name, tag, digest = match.groups()
    domain, path = _NAME_RE.fullmatch(name).groups(default="")  # type: ignore[union-attr]
    _check_path_length(path)
    if digest is not None:
        kind = _go_digest_error(digest)
        if kind is not None:
            raise ReferenceError(_digest_problem(digest) or _q(digest), kind=kind, part="digest")
    return ImageReference(domain, path, tag, digest)


def _split_docker_domain(name: str) -> tuple[str, str]:
    """normalize.go's splitDockerDomain: is the first component a registry, or a Hub namespace?"""
    first, slash, rest = name.partition("/")
    if not slash:
        return DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX + name
    if first == LEGACY_DEFAULT_DOMAIN:
        domain, remote = DEFAULT_DOMAIN, rest
    elif first == "localhost" or "." in first or ":" in first or _go_lower(first) != first:
        domain, remote = first, rest
    else:
        domain, remote = DEFAULT_DOMAIN, name
    if domain == DEFAULT_DOMAIN and "/" not in remote:
        remote = OFFICIAL_REPO_PREFIX + remote
    return domain, remote


def _go_digest_error(digest: str) -> str | None:
    """go-digest v1.0.0 Digest.Validate, returning the error kind or None."""
    i = digest.find(":")
    if i <= 0 or i + 1 == len(digest):
        return DIGEST_INVALID_FORMAT
    algorithm, encoded = digest[:i], digest[i + 1 :]
    expected = _DIGEST_HEX_LENGTHS.get(algorithm)
    if expected is None:
        return DIGEST_UNSUPPORTED if _GO_DIGEST_RE.fullmatch(digest) else DIGEST_INVALID_FORMAT
    if len(encoded.encode("utf-8", "surrogatepass")) != expected:  # Go's len() counts bytes
        return DIGEST_INVALID_LENGTH
    return None if _LOWER_HEX_RE.fullmatch(encoded) else DIGEST_INVALID_FORMAT


def _go_lower(s: str) -> str:
    # Go's strings.ToLower maps rune by rune; Python's full mapping turns 'İ' into two characters.
    return s.lower() if s.isascii() else "".join(c.lower()[0] for c in s)


def _check_path_length(path: str) -> None:
    if len(path) > NAME_TOTAL_LENGTH_MAX:
        message = f"the repository path is longer than {NAME_TOTAL_LENGTH_MAX} characters: {_q(path)}"
        raise ReferenceError(message, kind=NAME_TOO_LONG, part="path")

"""Docker image references, parsed exactly as Go's distribution/reference does.

The grammar and every decision (what counts as a registry host, when ``docker.io/library/`` is added,
which error a bad input produces) mirror github.com/distribution/reference (regexp.go, reference.go,
normalize.go) and go-digest v1.0.0, so that what we accept is exactly what the Docker daemon accepts.
Each Go sentinel error becomes ``ReferenceError.kind``; the message, by contrast, is ours: it names
the offending part of the input in words an operator who never read the grammar can act on.

Go quirks kept on purpose (the daemon has them too): a lone ``localhost:5000`` or ``example.com`` is
a Hub repository with a tag, not a registry; ``registry-1.docker.io`` is not rewritten to docker.io;
a first component that looks like a host but is not a valid one (``foo_bar.com/app``) leaves the
domain empty; and the familiar form of ``docker.io/foo.bar/app`` is ``foo.bar/app``, which re-parses
as a different registry (Docker Hub namespaces cannot contain '.', so this never names a real image).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

NAME_TOTAL_LENGTH_MAX = 255
TAG_LENGTH_MAX = 128
DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
_HUB_DOMAINS = frozenset({DEFAULT_DOMAIN, LEGACY_DEFAULT_DOMAIN, "registry-1.docker.io"})

# Error kinds, one per Go sentinel error (ErrReferenceInvalidFormat -> "reference_invalid_format").
REFERENCE_INVALID_FORMAT = "reference_invalid_format"
TAG_INVALID = "tag_invalid"
DIGEST_INVALID_FORMAT = "digest_invalid_format"
DIGEST_INVALID_LENGTH = "digest_invalid_length"
DIGEST_UNSUPPORTED = "digest_unsupported"
NAME_CONTAINS_UPPERCASE = "name_contains_uppercase"
NAME_EMPTY = "name_empty"
NAME_TOO_LONG = "name_too_long"
NAME_NOT_CANONICAL = "name_not_canonical"
NAME_IS_IDENTIFIER = "name_is_identifier"  # ParseNormalizedNamed's unnamed "64-byte hexadecimal" error
PATTERN_INVALID = "pattern_invalid"  # path.ErrBadPattern, from familiar_match

# regexp.go, piece by piece. re.ASCII keeps \w to [A-Za-z0-9_] as in Go's RE2, and every pattern is
# used with fullmatch() because Python's "$" would also accept a trailing newline.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_REMOTE_NAME = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[(?:[a-fA-F0-9:]+)\])"
_DOMAIN_AND_PORT = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
REFERENCE_PATTERN = rf"((?:{_DOMAIN_AND_PORT}/)?{_REMOTE_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?"

_REFERENCE_RE = re.compile(REFERENCE_PATTERN, re.ASCII)
_NAME_RE = re.compile(rf"(?:({_DOMAIN_AND_PORT})/)?({_REMOTE_NAME})", re.ASCII)
_TAG_RE = re.compile(_TAG, re.ASCII)
_DIGEST_RE = re.compile(_DIGEST, re.ASCII)
_IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}")
# go-digest v1.0.0: its own, looser digest syntax, and the algorithms with a registered hash.
_GO_DIGEST_RE = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_LOWER_HEX_RE = re.compile(r"[a-f0-9]+")

_PATH_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
_TAG_CHARS = _HOST_CHARS | frozenset("_.")


class ReferenceError(ValueError):
    """An image reference, tag or digest that Docker would refuse.

    ``kind`` is the Go sentinel error it corresponds to; ``part`` says which piece of the input is
    wrong ("name", "domain", "path", "tag", "digest", "reference" or, for familiar_match, "pattern").
    """

    def __init__(self, message: str, *, kind: str, part: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.part = part


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


# --- Go entry points -------------------------------------------------------------------------


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


parse_normalized_named = parse_normalized


def parse_named(text: str) -> ImageReference:
    """Go's ParseNamed: like parse_normalized, but only accepts the fully written-out form."""
    ref = parse_normalized(text)
    if str(ref) != text:
        message = f"{_q(text)} is a shorthand; write the full reference {_q(str(ref))}"
        raise ReferenceError(message, kind=NAME_NOT_CANONICAL, part="name")
    return ref


def parse_docker_ref(text: str) -> ImageReference:
    """Go's ParseDockerRef: normalized, 'latest' when untagged, and the digest wins over a tag."""
    ref = parse_normalized(text)
    if ref.tag is not None and ref.digest is not None:
        return with_digest(with_name(ref.name), ref.digest)
    return tag_name_only(ref)


def parse_any_reference(text: str) -> ImageReference | DigestReference:
    """Go's ParseAnyReference: an image ID or a digest on its own, else a normalized name."""
    if _IDENTIFIER_RE.fullmatch(text):
        return DigestReference(f"sha256:{text}")
    if _go_digest_error(text) is None:
        return DigestReference(text)
    return parse_normalized(text)


def with_name(name: str) -> ImageReference:
    """Go's WithName: a repository name only, split into domain and path without normalization."""
    match = _NAME_RE.fullmatch(name)
    if match is None:
        try:
            parse(name)
        except ReferenceError:
            raise _invalid(REFERENCE_INVALID_FORMAT, name) from None
        message = f"{_q(name)} includes a tag or digest; only the repository name is expected here"
        raise ReferenceError(message, kind=REFERENCE_INVALID_FORMAT, part="name")
    domain, path = match.group(1) or "", match.group(2)
    _check_path_length(path)
    return ImageReference(domain, path)


def with_tag(ref: ImageReference, tag: str) -> ImageReference:
    """Go's WithTag: checks only the tag's syntax; a digest already present is kept."""
    validate_tag(tag)
    return replace(ref, tag=tag)


def with_digest(ref: ImageReference, digest: str) -> ImageReference:
    """Go's WithDigest: checks only the reference grammar's digest syntax, not the hex length."""
    if not _DIGEST_RE.fullmatch(digest):
        raise ReferenceError(_digest_problem(digest) or _q(digest), kind=DIGEST_INVALID_FORMAT, part="digest")
    return replace(ref, digest=digest)


def tag_name_only(ref: ImageReference) -> ImageReference:
    """Go's TagNameOnly: adds ':latest' to a reference with neither tag nor digest."""
    return replace(ref, tag=DEFAULT_TAG) if ref.tag is None and ref.digest is None else ref


def split_hostname(ref: ImageReference) -> tuple[str, str]:
    """Go's SplitHostname (and Domain/Path): the registry host and the repository path."""
    return ref.domain, ref.path


def familiar_name(ref: ImageReference) -> str:
    return ref.familiar_name


def familiar_string(ref: ImageReference | DigestReference) -> str:
    return ref.familiar_string()


def familiar_match(pattern: str, ref: ImageReference | DigestReference) -> bool:
    """Go's FamiliarMatch: Go path.Match glob against the familiar string, then the familiar name."""
    try:
        matched = _path_match(pattern, ref.familiar_string())
    except _BadPatternError:
        raise ReferenceError(
            f"{_q(pattern)} is not a valid match pattern", kind=PATTERN_INVALID, part="pattern"
        ) from None
    if not matched and isinstance(ref, ImageReference):
        matched = _path_match(pattern, ref.familiar_name)
    return matched


# --- product helpers -------------------------------------------------------------------------


def validate_tag(tag: str) -> None:
    if not _TAG_RE.fullmatch(tag):
        raise ReferenceError(_tag_problem(tag) or f"invalid tag {_q(tag)}", kind=TAG_INVALID, part="tag")


def validate_digest(digest: str) -> None:
    """go-digest's Validate: 'algorithm:hex' with sha256/sha384/sha512 and their exact hex length."""
    kind = _go_digest_error(digest)
    if kind is not None:
        raise ReferenceError(_digest_problem(digest) or f"invalid digest {_q(digest)}", kind=kind, part="digest")


def is_docker_hub(domain: str) -> bool:
    return domain.lower() in _HUB_DOMAINS


def registry_of(text: str) -> str:
    """The registry host a reference pulls from ("docker.io" for Docker Hub).

    Best effort for text the grammar refuses, so an error message can still name a host.
    """
    try:
        return parse_normalized(text).domain
    except ReferenceError:
        first, slash, _ = text.partition("/")
        return first if slash and ("." in first or ":" in first or first == "localhost") else "docker.io"


# --- internals -------------------------------------------------------------------------------


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


def _q(s: str) -> str:
    """Quote user input for a message, escaping control characters and cutting very long input."""
    return repr(s) if len(s) <= 100 else f"{s[:80]!r}... ({len(s)} characters)"


def _invalid(kind: str, text: str) -> ReferenceError:
    part, message = _diagnose(text)
    return ReferenceError(message, kind=kind, part=part)


def _diagnose(text: str) -> tuple[str, str]:
    """Say which part of a rejected reference is wrong, and why. Only the wording depends on this."""
    if not text:
        return "name", "the image reference is empty"
    odd = next((c for c in text if c.isspace() or not c.isprintable()), None)
    if odd is not None:
        return (
            "reference",
            f"{_q(text)} contains {_q(odd)}; image references may not contain spaces or control characters",
        )
    if "://" in text:
        scheme = text.split("://", 1)[0]
        return "domain", f"{_q(text)} is a URL; leave out '{scheme}://' and write registry/repository[:tag]"
    # Peel off '@digest', then ':tag' (a ':' after the last '/'), skipping a bracketed IPv6 host.
    skip = text.find("]") + 1 if text.startswith("[") else 0
    at = text.find("@", skip)
    rest, digest = (text[:at], text[at + 1 :]) if at >= 0 else (text, None)
    colon = rest.rfind(":", skip)
    tag = None
    if colon > rest.rfind("/"):
        rest, tag = rest[:colon], rest[colon + 1 :]
    if not rest:
        return "name", f"{_q(text)} has no repository name before the {'tag' if tag is not None else 'digest'}"
    first, slash, remainder = rest.partition("/")
    looks_like_host = first == "localhost" or any(c in first for c in ".:[]") or first != first.lower()
    domain, path = (first, remainder) if slash and looks_like_host else ("", rest)
    if not domain and path.startswith("["):
        return "name", f"{_q(text)} names a registry but no repository; add '/<repository>' after {_q(path)}"
    domain_problem = _domain_problem(domain) if domain else None
    if domain_problem and first == first.lower() and not any(c in first for c in ":[]") and _path_problem(rest):
        # Go also tried reading 'dock..er/app' as a plain repository path; that reading is usually the intent.
        domain, path, domain_problem = "", rest, None
    if any("A" <= c <= "Z" for c in path):
        return "path", f"repository names must be lowercase: {_q(path)}"
    for part, problem in (
        ("domain", domain_problem),
        ("path", _path_problem(path)),
        ("tag", tag is not None and _tag_problem(tag)),
        ("digest", digest is not None and _digest_problem(digest)),
    ):
        if problem:
            return part, problem
    return "reference", f"{_q(text)} is not a valid image reference; expected [registry/]repository[:tag][@digest]"


def _path_problem(path: str) -> str | None:
    if not path:
        return "the repository name is empty"
    for component in path.split("/"):
        if not component:
            return f"{_q(path)} has an empty path component (a leading, trailing or doubled '/')"
        bad = next((c for c in component if c not in _PATH_CHARS), None)
        if bad == ":":
            return f"repository name {_q(path)} contains ':'; a reference has at most one ':tag', at the very end"
        if bad is not None:
            return (
                f"repository name {_q(path)} contains {_q(bad)}; use lowercase letters, digits, '.', '_', '-' and '/'"
            )
        if component[0] in "._-":
            return f"{_q(component)} may not start with a separator ('.', '_' or '-'); start it with a letter or digit"
        if component[-1] in "._-":
            return f"{_q(component)} may not end with a separator ('.', '_' or '-'); end it with a letter or digit"
        for run in re.findall(r"[._-]{2,}", component):
            if run != "__" and set(run) != {"-"}:
                return f"{_q(component)} contains {_q(run)}; separate words with one '.', '_' or '__', or with dashes"
    return None


def _domain_problem(domain: str) -> str | None:
    if domain.startswith("["):
        close = domain.find("]")
        host, port = (domain[: close + 1], domain[close + 1 :]) if close > 0 else (domain, "")
        if close < 0 or not re.fullmatch(r"\[[0-9a-fA-F:]+\]", host):
            return (
                f"registry address {_q(host)} is not a valid IPv6 address: only hex digits and ':' may appear "
                "between the brackets (zone IDs such as '%eth0' and embedded IPv4 are not supported)"
            )
        if ":" not in host:  # Go only takes a first component with '.' or ':' for a registry
            return f"registry address {_q(host)} is not an IPv6 address: it has no ':'"
        if port and not port.startswith(":"):
            return f"registry address {_q(domain)} has {_q(port)} after the IPv6 address; expected ':<port>'"
        port_or_none = port[1:] if port else None
    else:
        host, colon, port = domain.partition(":")
        if ":" in port:
            return f"registry address {_q(domain)} has several ':'; write IPv6 addresses in brackets: '[fc00::1]:5000'"
        port_or_none = port if colon else None
        for label in host.split("."):
            bad = next((c for c in label if c not in _HOST_CHARS), None)
            if not label:
                return f"registry host {_q(host)} has an empty label (a leading, trailing or doubled '.')"
            if bad is not None:
                return f"registry host {_q(host)} contains {_q(bad)}; host names use letters, digits, '-' and '.'"
            if "-" in (label[0], label[-1]):
                return f"registry host {_q(host)} has a part that starts or ends with '-': {_q(label)}"
    if port_or_none == "":
        return f"registry address {_q(domain)} ends with ':' but has no port number"
    if port_or_none is not None and not re.fullmatch(r"[0-9]+", port_or_none):
        return f"registry port {_q(port_or_none)} in {_q(domain)} must be a number"
    return None


def _tag_problem(tag: str) -> str | None:
    if not tag:
        return "the tag after ':' is empty; remove the ':' or give a tag such as 'latest'"
    if len(tag) > TAG_LENGTH_MAX:
        return f"tag is longer than {TAG_LENGTH_MAX} characters: {_q(tag)}"
    if tag[0] in ".-":
        return f"tag may not start with {tag[0]!r}: {_q(tag)}"
    bad = next((c for c in tag if c not in _TAG_CHARS), None)
    if bad is not None:
        return f"tag {_q(tag)} contains {_q(bad)}; tags use letters, digits, '_', '.' and '-'"
    return None


def _digest_problem(digest: str) -> str | None:
    prefix = f"{_q(digest)} is not a valid digest"
    if not digest:
        return "the digest after '@' is empty; remove the '@' or give a digest such as 'sha256:<64 hex characters>'"
    algorithm, colon, encoded = digest.partition(":")
    if not colon:
        return f"{prefix}: expected '<algorithm>:<hex>', such as 'sha256:' followed by 64 hex characters"
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*", algorithm):
        return f"{prefix}: the algorithm before ':' should be a name such as 'sha256'"
    if not re.fullmatch(r"[0-9a-fA-F]+", encoded):
        return f"{prefix}: the part after ':' must be hexadecimal (0-9, a-f)"
    expected = _DIGEST_HEX_LENGTHS.get(algorithm)
    if expected is None:
        return f"{prefix}: unsupported algorithm {_q(algorithm)}; use sha256, sha384 or sha512"
    if len(encoded) != expected:
        return f"{prefix}: {algorithm} digests have {expected} hex characters, not {len(encoded)}"
    if encoded != encoded.lower():
        return f"{prefix}: {algorithm} digests are written in lowercase hex"
    return None


# --- Go's path.Match, for familiar_match -----------------------------------------------------


class _BadPatternError(Exception):
    pass


def _path_match(pattern: str, name: str) -> bool:
    """A port of Go's path.Match: '*' and '?' never cross '/', '[...]' classes, '\\' escapes.

    Go matches chunk by chunk and never backtracks into an earlier star; a regex would differ.
    """
    while pattern:
        star, chunk, pattern = _scan_chunk(pattern)
        if star and not chunk:
            return "/" not in name  # a trailing '*' matches the rest unless it has a '/'
        rest = _match_chunk(chunk, name)
        if rest is not None and (not rest or pattern):
            name = rest
            continue
        if star and (rest := _match_after_star(chunk, name, last=not pattern)) is not None:
            name = rest
            continue
        while pattern:  # like Go, still report a malformed remainder after a mismatch
            _, chunk, pattern = _scan_chunk(pattern)
            _match_chunk(chunk, "")
        return False
    return not name


def _match_after_star(chunk: str, name: str, *, last: bool) -> str | None:
    # The star skips 1..n characters, never a '/'; the first skip where the chunk fits wins.
    for i in range(len(name)):
        if name[i] == "/":
            return None
        rest = _match_chunk(chunk, name[i + 1 :])
        if rest is not None and not (last and rest):
            return rest
    return None


def _scan_chunk(pattern: str) -> tuple[bool, str, str]:
    stripped = pattern.lstrip("*")
    star, pattern = len(stripped) != len(pattern), stripped
    in_range, i = False, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 1 if i + 1 < len(pattern) else 0
        elif c in "[]":
            in_range = c == "["
        elif c == "*" and not in_range:
            break
        i += 1
    return star, pattern[:i], pattern[i:]


def _match_chunk(chunk: str, s: str) -> str | None:
    failed = False
    while chunk:
        failed = failed or not s
        c = chunk[0]
        if c == "[":
            r, s = ("\0", s) if failed else (s[0], s[1:])
            chunk = chunk[1:]
            negated = chunk[:1] == "^"
            chunk = chunk[1:] if negated else chunk
            matched, ranges = False, 0
            while not (chunk[:1] == "]" and ranges > 0):
                lo, chunk = _get_esc(chunk)
                hi = lo
                if chunk[0] == "-":
                    hi, chunk = _get_esc(chunk[1:])
                matched = matched or lo <= r <= hi
                ranges += 1
            chunk = chunk[1:]
            failed = failed or matched == negated
        elif c == "?":
            if not failed:
                failed, s = s[0] == "/", s[1:]
            chunk = chunk[1:]
        else:
            if c == "\\":
                chunk = chunk[1:]
                if not chunk:
                    raise _BadPatternError
            if not failed:
                failed, s = chunk[0] != s[0], s[1:]
            chunk = chunk[1:]
    return None if failed else s


def _get_esc(chunk: str) -> tuple[str, str]:
    if not chunk or chunk[0] in "-]":
        raise _BadPatternError
    if chunk[0] == "\\":
        chunk = chunk[1:]
        if not chunk:
            raise _BadPatternError
    if len(chunk) < 2:
        raise _BadPatternError
    return chunk[0], chunk[1:]

"""The rest of Go's distribution/reference API, for the conformance tests.

The product parses with ``parse_normalized`` and validates with ``validate_tag``; these entry points
(ParseNamed, ParseDockerRef, ParseAnyReference, WithName, WithTag, WithDigest, TagNameOnly,
SplitHostname, FamiliarName, FamiliarString, FamiliarMatch) exist so that Go's own test tables can
be replayed against our grammar case by case. The package does not import this module; import
``registries.reference.go_api`` where a Go name is wanted.
"""

from __future__ import annotations

from dataclasses import replace

from .errors import (
    DIGEST_INVALID_FORMAT,
    NAME_NOT_CANONICAL,
    PATTERN_INVALID,
    REFERENCE_INVALID_FORMAT,
    ReferenceError,
    _q,
)
from .grammar import (
    _DIGEST_RE,
    _IDENTIFIER_RE,
    _NAME_RE,
    DEFAULT_TAG,
    DigestReference,
    ImageReference,
    _check_path_length,
    _go_digest_error,
    parse,
    parse_normalized,
    validate_tag,
)
from .messages import _digest_problem, _invalid

# Go's ParseNormalizedNamed, under its Go name for the conformance tables.
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

"""The human side of a refused reference: which part of the input is wrong, and why.

The grammar decides *whether* a reference is valid and which Go error it is; this module only
words the message, naming the offending part in terms an operator who never read the grammar
can act on. Nothing here changes what is accepted.
"""

from __future__ import annotations

import re

from .errors import _DIGEST_HEX_LENGTHS, TAG_LENGTH_MAX, ReferenceError, _q

_PATH_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
_TAG_CHARS = _HOST_CHARS | frozenset("_.")


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

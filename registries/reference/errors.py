"""What a refused reference raises, and the limits both the grammar and its messages cite.

A module of its own so that the grammar (which raises) and the messages (which explain) can both
use it without importing each other.
"""

from __future__ import annotations

NAME_TOTAL_LENGTH_MAX = 255
TAG_LENGTH_MAX = 128
# go-digest v1.0.0: the algorithms with a registered hash, and their hex length.
_DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}

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


class ReferenceError(ValueError):
    """An image reference, tag or digest that Docker would refuse.

    ``kind`` is the Go sentinel error it corresponds to; ``part`` says which piece of the input is
    wrong ("name", "domain", "path", "tag", "digest", "reference" or, for familiar_match, "pattern").
    """

    def __init__(self, message: str, *, kind: str, part: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.part = part


def _q(s: str) -> str:
    """Quote user input for a message, escaping control characters and cutting very long input."""
    return repr(s) if len(s) <= 100 else f"{s[:80]!r}... ({len(s)} characters)"

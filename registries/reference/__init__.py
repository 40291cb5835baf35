"""Docker image references, parsed exactly as Go's distribution/reference does.

``grammar`` holds the grammar and the decisions it records (read its docstring before changing
what is accepted); ``messages`` words the errors; ``errors`` holds ``ReferenceError`` and its kinds.
``go_api`` is the rest of Go's API, for the conformance tests only, and is not imported here.
"""

from .errors import (
    DIGEST_INVALID_FORMAT,
    DIGEST_INVALID_LENGTH,
    DIGEST_UNSUPPORTED,
    NAME_CONTAINS_UPPERCASE,
    NAME_EMPTY,
    NAME_IS_IDENTIFIER,
    NAME_NOT_CANONICAL,
    NAME_TOO_LONG,
    NAME_TOTAL_LENGTH_MAX,
    PATTERN_INVALID,
    REFERENCE_INVALID_FORMAT,
    TAG_INVALID,
    TAG_LENGTH_MAX,
    ReferenceError,
)
from .grammar import (
    DEFAULT_DOMAIN,
    DEFAULT_TAG,
    DOCKER_HUB_HOSTS,
    LEGACY_DEFAULT_DOMAIN,
    OFFICIAL_REPO_PREFIX,
    REFERENCE_PATTERN,
    DigestReference,
    ImageReference,
    is_docker_hub,
    normalize_host,
    parse,
    parse_normalized,
    registry_of,
    validate_digest,
    validate_tag,
)

__all__ = [
    "DEFAULT_DOMAIN",
    "DEFAULT_TAG",
    "DIGEST_INVALID_FORMAT",
    "DIGEST_INVALID_LENGTH",
    "DIGEST_UNSUPPORTED",
    "DOCKER_HUB_HOSTS",
    "LEGACY_DEFAULT_DOMAIN",
    "NAME_CONTAINS_UPPERCASE",
    "NAME_EMPTY",
    "NAME_IS_IDENTIFIER",
    "NAME_NOT_CANONICAL",
    "NAME_TOO_LONG",
    "NAME_TOTAL_LENGTH_MAX",
    "OFFICIAL_REPO_PREFIX",
    "PATTERN_INVALID",
    "REFERENCE_INVALID_FORMAT",
    "REFERENCE_PATTERN",
    "TAG_INVALID",
    "TAG_LENGTH_MAX",
    "DigestReference",
    "ImageReference",
    "ReferenceError",
    "is_docker_hub",
    "normalize_host",
    "parse",
    "parse_normalized",
    "registry_of",
    "validate_digest",
    "validate_tag",
]

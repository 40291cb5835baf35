"""Property tests for registries.reference (profiles in tests/unit/conftest.py: 200 examples, 2000 on CI)."""

from __future__ import annotations

import re

from hypothesis import assume, given
from hypothesis import strategies as st

from registries import reference
from registries.reference import REFERENCE_PATTERN, DigestReference, ImageReference, ReferenceError, go_api

KINDS = {
    value for name, value in vars(reference).items() if name.isupper() and isinstance(value, str) and value.islower()
}
PARTS = {"name", "domain", "path", "tag", "digest", "reference", "pattern"}
GRAMMAR_ALPHABET = "abcfxyz0189ABFXZ-._/:@[]%+é \n\t\x00"

LOWER_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
alnum = st.text(LOWER_ALNUM, min_size=1, max_size=8)
component = st.builds(
    lambda first, rest: first + "".join(sep + word for sep, word in rest),
    alnum,
    st.lists(st.tuples(st.sampled_from([".", "_", "__", "-", "---"]), alnum), max_size=3),
)
path = st.lists(component, min_size=1, max_size=4).map("/".join)
label = st.from_regex(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?", fullmatch=True)
host = st.one_of(
    st.sampled_from(
        [
            "docker.io",
            "index.docker.io",
            "ghcr.io",
            "localhost",
            "quay.io",
            "127.0.0.1",
            "[::1]",
            "[fc00::1]",
            "[2001:db8:1:2:3:4:5:6]",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        ]
    ),
    st.lists(label, min_size=2, max_size=4).map(".".join),
    label.filter(lambda text: text.lower() != text),  # an uppercase first component is a host
)
domain = st.builds(lambda h, port: h if port is None else f"{h}:{port}", host, st.none() | st.integers(0, 65535))
tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", fullmatch=True)
digest = st.sampled_from([("sha256", 64), ("sha384", 96), ("sha512", 128)]).flatmap(
    lambda algorithm: st.text("0123456789abcdef", min_size=algorithm[1], max_size=algorithm[1]).map(
        lambda hex_: f"{algorithm[0]}:{hex_}"
    )
)
valid_text = st.builds(
    lambda d, p, t, g: (f"{d}/" if d else "") + p + (f":{t}" if t else "") + (f"@{g}" if g else ""),
    st.none() | domain,
    path,
    st.none() | tag,
    st.none() | digest,
)


# The reference grammar itself, with its unbounded repetitions capped so that examples stay short (and fast).
GRAMMAR = re.compile(
    REFERENCE_PATTERN.replace(")*", "){0,3}")
    .replace("]*", "]{0,6}")
    .replace("]+", "]{1,6}")
    .replace("{32,}", "{32,72}"),
    re.ASCII,
)


def _mutate(text: str, position: int, new: str, drop: bool) -> str:
    position %= len(text) + 1
    return text[:position] + new + text[position + (1 if drop else 0) :]


any_text = st.one_of(
    st.text(),  # all of Unicode, control characters included
    st.text(GRAMMAR_ALPHABET, max_size=80),
    st.from_regex(GRAMMAR, fullmatch=True),
    st.builds(
        _mutate, valid_text, st.integers(0, 400), st.sampled_from(list(GRAMMAR_ALPHABET)) | st.just(""), st.booleans()
    ),
)


def _check_error(exc: ReferenceError) -> None:
    assert exc.kind in KINDS, exc.kind
    assert exc.part in PARTS, exc.part
    message = str(exc)
    assert message.strip() and len(message) < 600


@given(any_text)
def test_any_text_is_either_a_reference_or_a_reference_error(text: str) -> None:
    try:
        ref = reference.parse_normalized(text)
    except ReferenceError as exc:
        _check_error(exc)
    else:
        assert isinstance(ref, ImageReference)
        assert reference.parse_normalized(str(ref)) == ref
    for entry_point in (
        reference.parse,
        go_api.parse_any_reference,
        go_api.with_name,
        go_api.parse_docker_ref,
    ):
        try:
            result = entry_point(text)
        except ReferenceError as exc:
            _check_error(exc)
        else:
            assert isinstance(result, ImageReference | DigestReference)
    for validator in (reference.validate_tag, reference.validate_digest):
        try:
            validator(text)
        except ReferenceError as exc:
            _check_error(exc)


@given(valid_text)
def test_valid_references_survive_a_round_trip_through_both_spellings(text: str) -> None:
    _check_round_trip(reference.parse_normalized(text))


# The grammar without its '@digest' part: most grammar-valid digests name algorithms go-digest refuses.
@given(st.from_regex(re.compile(GRAMMAR.pattern.rsplit("(?:@", 1)[0], re.ASCII), fullmatch=True), st.none() | digest)
def test_whatever_the_grammar_accepts_survives_a_round_trip(name_and_tag: str, digest_: str | None) -> None:
    text = name_and_tag + (f"@{digest_}" if digest_ else "")
    assert reference.parse(text)
    try:
        ref = reference.parse_normalized(text)
    except ReferenceError:
        # Normalization refuses some grammar-valid names, as Go does: '[0]/app' has no '.' or ':', so its
        # first component is a Docker Hub namespace, where '[' is not allowed.
        assume(False)
    _check_round_trip(ref)


def _check_round_trip(ref: ImageReference) -> None:
    first = ref.path.split("/", 1)[0]
    # Go's familiar form of docker.io/foo.bar/app is 'foo.bar/app', which names another registry;
    # Docker Hub namespaces cannot contain '.', so we only exclude what Hub could never hold.
    assume(not (ref.domain == "docker.io" and ("." in first or first == "localhost")))
    assert str(reference.parse_normalized(str(ref))) == str(ref)
    assert reference.parse_normalized(ref.familiar_string()) == ref
    assert go_api.parse_named(str(ref)) == ref
    assert reference.parse(str(ref)) == ref


@given(st.text(max_size=300) | st.from_regex(r"[\w][\w.-]{0,140}", fullmatch=True))
def test_validate_tag_agrees_with_with_tag(text: str) -> None:
    base = reference.parse_normalized("busybox")
    try:
        reference.validate_tag(text)
    except ReferenceError:
        accepted = False
    else:
        accepted = True
    try:
        tagged = go_api.with_tag(base, text)
    except ReferenceError:
        assert not accepted
    else:
        assert accepted and tagged.tag == text

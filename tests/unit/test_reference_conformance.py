"""Every case of distribution/reference's Go test tables, replayed against registries.reference.

The cases live in shared/conformance/reference-vectors.json (override with REFERENCE_VECTORS); its
"notes" field documents the format. One test per case; cases marked go_specific depend on the Go
runtime rather than on the grammar and are skipped.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from registries import reference
from registries.reference import go_api

# A copy of shared/conformance/reference-vectors.json lives in the repository so a clean clone
# tests the same cases anywhere; test_the_copy_matches_the_shared_vectors keeps it honest.
SHARED_VECTORS = Path(__file__).resolve().parents[3] / "shared/conformance/reference-vectors.json"
VECTORS = Path(os.environ.get("REFERENCE_VECTORS") or Path(__file__).parent / "data/reference-vectors.json")

# Go sentinel error -> ReferenceError.kind.
GO_ERRORS = {
    "ErrReferenceInvalidFormat": reference.REFERENCE_INVALID_FORMAT,
    "ErrTagInvalidFormat": reference.TAG_INVALID,
    "ErrDigestInvalidFormat": reference.DIGEST_INVALID_FORMAT,
    "ErrDigestInvalidLength": reference.DIGEST_INVALID_LENGTH,
    "ErrDigestUnsupported": reference.DIGEST_UNSUPPORTED,
    "ErrNameContainsUppercase": reference.NAME_CONTAINS_UPPERCASE,
    "ErrNameEmpty": reference.NAME_EMPTY,
    "ErrNameTooLong": reference.NAME_TOO_LONG,
    "ErrNameNotCanonical": reference.NAME_NOT_CANONICAL,
}

ENTRY_POINTS: dict[str, Callable[[str], Any]] = {
    "Parse": reference.parse,
    "ParseNamed": go_api.parse_named,
    "ParseNormalizedNamed": go_api.parse_normalized_named,
    "ParseDockerRef": go_api.parse_docker_ref,
    "ParseAnyReference": go_api.parse_any_reference,
    "WithName": go_api.with_name,
}

# Expected output field -> how to read it from our result.
FIELDS: dict[str, Callable[[Any], Any]] = {
    "name": lambda ref: ref.name,
    "domain": lambda ref: ref.domain,
    "path": lambda ref: ref.path,
    "tag": lambda ref: ref.tag,
    "digest": lambda ref: ref.digest,
    "string": str,
    "familiar_name": go_api.familiar_name,
    "familiar_string": go_api.familiar_string,
}


def _load_cases() -> list[dict[str, Any]]:
    try:
        data = json.loads(VECTORS.read_text(encoding="utf-8"))
    except FileNotFoundError:
        pytest.fail(f"conformance vectors not found at {VECTORS}; set REFERENCE_VECTORS", pytrace=False)
    return data["cases"]


def _case_id(case: dict[str, Any]) -> str:
    text = case["input"] if len(case["input"]) <= 48 else f"{case['input'][:40]}...len{len(case['input'])}"
    steps = [f"{step}({case['with_tag' if step == 'WithTag' else 'with_digest']})" for step in case.get("apply", [])]
    extra = [f"pattern={case['pattern']}"] if "pattern" in case else steps
    return "-".join(part for part in (case["table"], case.get("label"), text or "<empty>", *extra) if part)


CASES = _load_cases()
_raw_ids = [_case_id(case) for case in CASES]
_seen: Counter[str] = Counter()
IDS = []
for _id in _raw_ids:  # the file keeps one duplicated Parse input twice; give each its own id
    _seen[_id] += 1
    IDS.append(_id if _raw_ids.count(_id) == 1 else f"{_id}#{_seen[_id]}")


def _run(case: dict[str, Any]) -> Any:
    function = case["function"]
    if function in ("WithTag", "WithDigest"):
        result = ENTRY_POINTS[case["base_function"]](case["input"])
        for step in case["apply"]:
            if step == "WithTag":
                result = go_api.with_tag(result, case["with_tag"])
            else:
                assert step == "WithDigest", step
                result = go_api.with_digest(result, case["with_digest"])
        return result
    if function == "FamiliarMatch":
        return go_api.familiar_match(case["pattern"], go_api.parse_any_reference(case["input"]))
    return ENTRY_POINTS[function](case["input"])


def test_the_vector_file_is_not_empty() -> None:
    assert len(CASES) > 0


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_it_behaves_like_go_distribution_reference(case: dict[str, Any]) -> None:
    if case.get("go_specific"):
        if case["function"] == "FamiliarMatch":
            pytest.skip(reason="go_specific: the outcome follows Go's path.Match glob rules, not the reference grammar")
        pytest.skip(reason="go_specific: the outcome depends on which hash functions the Go test binary links")

    if not case["valid"]:
        with pytest.raises(reference.ReferenceError) as caught:
            _run(case)
        if case["error"] is not None:
            assert caught.value.kind == GO_ERRORS[case["error"]], str(caught.value)
        if case.get("digest_validation"):  # grammar-valid, refused by the digest checks alone
            assert caught.value.part == "digest", str(caught.value)
        assert str(caught.value).strip()
        return

    result = _run(case)
    if case["function"] == "FamiliarMatch":
        assert result is case["match"]
        return
    if case.get("digest_only"):
        assert isinstance(result, reference.DigestReference)
    elif "digest_only" in case:
        assert result == reference.parse(case["string"])
    checked = [field for field in FIELDS if field in case]
    for field in checked:
        assert FIELDS[field](result) == case[field], field


def test_the_copy_matches_the_shared_vectors() -> None:
    if not SHARED_VECTORS.exists():
        return  # a clone outside the workspace has only the copy
    assert SHARED_VECTORS.read_bytes() == VECTORS.read_bytes(), "refresh tests/unit/data/reference-vectors.json"

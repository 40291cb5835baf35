"""Small checks for what agents send: each field's type, length and range, and no field that is not expected.

A check is a function ``(value, where) -> clean value`` raising a 400 (:func:`.http.invalid`) that names the
field (``events[3].number``) but never repeats its value, which may be a secret sent by mistake. The limits are
the columns' own (a CharField's max_length, a PositiveIntegerField's range): PostgreSQL refuses what does not
fit with an error, and that must be a 400 here rather than a 500 there. For the same reason no text may hold a
NUL character or a lone surrogate, which JSON allows and PostgreSQL does not store.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .http import invalid

Check = Callable[[Any, str], Any]

INT32 = 2**31 - 1  # IntegerField, PositiveIntegerField
INT63 = 2**63 - 1  # BigIntegerField, primary keys
# An error code as the project spells them (registries/errors.py, containers/daemon.py): PullJob.error_code is 32.
CODE = re.compile(r"[a-z0-9_]{1,32}")


def fail(where: str, why: str):
    raise invalid(f"{where}: {why}.")


def _safe_text(value: str, where: str) -> str:
    if "\x00" in value:
        fail(where, "must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        fail(where, "is not valid Unicode")
    return value


def text(max_length: int, *, null: bool = False, pattern: re.Pattern | None = None, blank: bool = True) -> Check:
    def check(value, where):
        if value is None and null:
            return None
        if not isinstance(value, str):
            fail(where, "must be a string")
        if len(value) > max_length:
            fail(where, f"must be at most {max_length} characters")
        if not blank and not value.strip():
            fail(where, "must not be blank")
        if pattern is not None and not pattern.fullmatch(value):
            fail(where, "is not in the expected form")
        return _safe_text(value, where)

    return check


def integer(low: int, high: int, *, null: bool = False) -> Check:
    def check(value, where):
        if value is None and null:
            return None
        # bool is an int in Python, not in JSON's meaning.
        if isinstance(value, bool) or not isinstance(value, int):
            fail(where, "must be an integer")
        if not low <= value <= high:
            fail(where, f"must be between {low} and {high}")
        return value

    return check


def number(low: float, high: float) -> Check:
    def check(value, where):
        if isinstance(value, bool) or not isinstance(value, int | float):
            fail(where, "must be a number")
        if not math.isfinite(value) or not low <= value <= high:
            fail(where, f"must be between {low:g} and {high:g}")
        return float(value)

    return check


def anything(value, where):
    """No check here: the caller checks each entry itself (an event's fields depend on its type)."""
    return value


def boolean(value, where):
    if not isinstance(value, bool):
        fail(where, "must be true or false")
    return value


def one_of(choices: Iterable[str]) -> Check:
    allowed = tuple(choices)

    def check(value, where):
        if not isinstance(value, str) or value not in allowed:
            fail(where, f"must be one of {', '.join(repr(choice) for choice in allowed)}")
        return value

    return check


def items(item: Check, max_items: int) -> Check:
    def check(value, where):
        if not isinstance(value, list):
            fail(where, "must be a list")
        if len(value) > max_items:
            fail(where, f"must have at most {max_items} entries")
        return [item(entry, f"{where}[{index}]") for index, entry in enumerate(value)]

    return check


def record(fields: Mapping[str, Check], *, required: Iterable[str] = (), ignore: Iterable[str] = ()) -> Check:
    """An object with only these keys (those in ``ignore`` are passed over); a missing required one fails."""
    needed, skipped = tuple(required), frozenset(ignore)

    def check(value, where):
        if not isinstance(value, dict):
            fail(where, "must be an object")
        unknown = sorted(str(key) for key in value if key not in fields and key not in skipped)
        if unknown:
            # The names are the caller's own keys, cut short: never a value.
            fail(where, f"unexpected field {unknown[0][:40]!r}")
        for name in needed:
            if name not in value:
                fail(where, f"{name!r} is required")
        return {name: fields[name](value[name], f"{where}.{name}") for name in fields if name in value}

    return check


def free_json(*, max_bytes: int, max_depth: int = 20) -> Check:
    """Any JSON object (an answer the web shows), within a size and a depth, its texts and keys storable."""

    def walk(value, where: str, depth: int) -> None:
        if depth > max_depth:
            fail(where, f"is nested more than {max_depth} levels deep")
        if isinstance(value, str):
            _safe_text(value, where)
        elif isinstance(value, dict):
            for key, entry in value.items():
                _safe_text(key, where)
                walk(entry, where, depth + 1)
        elif isinstance(value, list):
            for entry in value:
                walk(entry, where, depth + 1)

    def check(value, where):
        if not isinstance(value, dict):
            fail(where, "must be an object")
        walk(value, where, 0)
        if len(json.dumps(value, separators=(",", ":"))) > max_bytes:
            fail(where, f"must be at most {max_bytes} bytes of JSON")
        return value

    return check


# Shared fields.
HOLDER = text(200, blank=False)  # PullJob.worker is 200 characters; a claim's token (pulls/holders.py) fits.
ATTEMPT = integer(1, INT32)

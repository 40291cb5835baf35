"""A claimed job's writes, sent by its agent in batches: validated whole, then applied in order through the fence.

Each event is one call of :mod:`orchestrator.pulls.actions` with an ``actions.Fence(job_id, holder)``, exactly
as the runner makes them today; the fence is why a holder that lost the job changes nothing. A batch with one
bad event applies none (the agent has a bug to fix, and half a batch would leave the row in a state no runner
ever made). Application stops at the first write that matched nothing: the holder no longer holds the job,
and what follows (say a ``finish`` after a lost ``pulled``) must not happen either.
"""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.models import PullJob
from orchestrator.pulls import actions
from orchestrator.pulls.progress import Snapshot

from .schema import (
    ATTEMPT,
    CODE,
    HOLDER,
    INT32,
    INT63,
    anything,
    boolean,
    fail,
    integer,
    items,
    number,
    one_of,
    record,
    text,
)

MAX_EVENTS = 100
# An image has at most a few hundred layers; the daemon reports one line per layer.
MAX_LAYERS = 1000
# Longer than any message the project builds (registries/errors.py cuts daemon texts to 300 characters).
MAX_MESSAGE = 4000
# A retry waits download_retry_interval (at most a day) or the rate-limit backoff (pulls/runner.py).
MAX_RETRY_IN = 7 * 24 * 3600.0

_MESSAGE_500 = text(500)  # PullJob.message
_CONTAINER_STATE = one_of(PullJob.ContainerState.values)
_LAYER = record(
    {
        "id": text(200),
        "status": text(200),
        "current": integer(0, INT63, null=True),
        "total": integer(0, INT63, null=True),
    },
    required=("id", "status"),
)

SCHEMAS = {
    "beat": record({}),
    "begin_attempt": record({"number": ATTEMPT}, required=("number",)),
    # pulls.progress.Snapshot, field for field; PullJob's columns bound the numbers.
    "progress": record(
        {
            "progress": integer(0, 100, null=True),
            "bytes_done": integer(0, INT63),
            "bytes_total": integer(0, INT63, null=True),
            "layers_done": integer(0, INT32),
            "layers_total": integer(0, INT32, null=True),
            "layers": items(_LAYER, MAX_LAYERS),
            "message": _MESSAGE_500,
            "digest": text(200, null=True),
        },
        required=("progress", "bytes_done", "bytes_total", "layers_done", "layers_total", "layers", "message"),
    ),
    "attempt_failed": record(
        {
            "number": ATTEMPT,
            "code": text(32, pattern=CODE),
            "message": text(MAX_MESSAGE),
            "retry_in": number(0, MAX_RETRY_IN),
        },
        required=("number", "code", "message", "retry_in"),
    ),
    "fail": record(
        {
            "number": integer(0, INT32),  # 0: an internal error before the first attempt began (runner.run)
            "code": text(32, pattern=CODE),
            "message": text(MAX_MESSAGE),
            "note": text(MAX_MESSAGE, null=True),
        },
        required=("number", "code", "message"),
    ),
    "cancel_attempt": record({"number": ATTEMPT, "message": text(MAX_MESSAGE)}, required=("number", "message")),
    "pulled": record(
        {"digest": text(200), "platform": text(64), "up_to_date": boolean},
        required=("digest", "platform", "up_to_date"),
    ),
    # What the container phase passes (containers/lifecycle.py through phase.py's progress()).
    "container_progress": record(
        {"container_state": _CONTAINER_STATE, "container_id": text(64), "message": _MESSAGE_500}
    ),
    # phase.py's endings; the other columns of the row are not the agent's to set.
    "finish": record(
        {
            "state": one_of((PullJob.State.SUCCEEDED, PullJob.State.FAILED, PullJob.State.CANCELLED)),
            "message": _MESSAGE_500,
            "error_code": text(32, pattern=CODE),
            "error_message": text(MAX_MESSAGE),
            "container_state": _CONTAINER_STATE,
            "container_id": text(64),
            "container_error": text(MAX_MESSAGE),
        },
        required=("state",),
    ),
}


_BATCH = record({"holder": HOLDER, "events": items(anything, MAX_EVENTS)}, required=("holder", "events"))


def parse_batch(data: dict) -> tuple[str, list[tuple[str, dict]]]:
    """(holder, [(type, fields)]) from a request body; raises a 400 for anything out of place."""
    body = _BATCH(data, "body")
    batch = []
    for index, event in enumerate(body["events"]):
        where = f"events[{index}]"
        if not isinstance(event, dict):
            fail(where, "must be an object")
        kind = event.get("type")
        if not isinstance(kind, str) or kind not in SCHEMAS:
            fail(f"{where}.type", f"must be one of {', '.join(SCHEMAS)}")
        fields = SCHEMAS[kind]({key: value for key, value in event.items() if key != "type"}, where)
        if kind == "container_progress" and not fields:
            fail(where, "names no field to change")
        batch.append((kind, fields))
    return body["holder"], batch


def _progress(fence: actions.Fence, fields: dict) -> bool:
    return actions.record_progress(fence, Snapshot(**{"digest": None, **fields}))


def _attempt_failed(fence: actions.Fence, fields: dict) -> bool:
    if not actions.attempt_failed(fence, fields["number"], fields["code"], fields["message"], fields["retry_in"]):
        return False
    # The job is queued again, due at not_before: the console sends its task right away, as the runner did,
    # so the agent only ever consumes its queue and never publishes a pull of its own.
    actions.dispatch(fence.job_id)
    return True


APPLY: dict[str, Callable[[actions.Fence, dict], bool]] = {
    "beat": lambda fence, fields: actions.beat(fence),
    "begin_attempt": lambda fence, fields: actions.begin_attempt(fence, fields["number"]),
    "progress": _progress,
    "attempt_failed": _attempt_failed,
    "fail": lambda fence, fields: actions.fail(
        fence, fields["number"], fields["code"], fields["message"], note=fields.get("note")
    ),
    "cancel_attempt": lambda fence, fields: actions.cancel_attempt(fence, fields["number"], fields["message"]),
    "pulled": lambda fence, fields: actions.pulled(fence, **fields),
    "container_progress": lambda fence, fields: actions.container_progress(fence, **fields),
    "finish": lambda fence, fields: actions.finish(fence, **fields),
}


def apply(job_id: int, holder: str, batch: list[tuple[str, dict]]) -> tuple[int, bool]:
    """Apply the batch in order. Returns (how many were applied, whether the holder has lost the job)."""
    fence = actions.Fence(job_id, holder)
    if not batch:
        # Nothing to write: the answer still says whether the job is this holder's (a poll of the flags).
        return 0, not fence.rows().exists()
    for applied, (kind, fields) in enumerate(batch):
        # Every action returns False when its write matched no row held by this holder.
        if not APPLY[kind](fence, fields):
            return applied, True
    return len(batch), False

"""Progress folding over recorded pull event streams (classic and containerd shapes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.pulls.progress import ProgressFolder

STREAMS = Path(__file__).parent / "streams"


def load(name: str) -> list[dict]:
    return [json.loads(line) for line in (STREAMS / name).read_text().splitlines() if line.strip()]


def fold_all(events: list[dict]) -> tuple[ProgressFolder, list]:
    folder = ProgressFolder()
    snapshots = []
    for event in events:
        folder.feed(event)
        snapshots.append(folder.snapshot())
    return folder, snapshots


@pytest.mark.parametrize("stream", sorted(p.name for p in STREAMS.glob("*.jsonl")))
def test_every_recorded_stream_folds_to_a_rising_percentage_that_ends_at_100(stream):
    folder, snapshots = fold_all(load(stream))
    figures = [s.progress for s in snapshots if s.progress is not None]
    assert figures == sorted(figures)
    assert all(0 <= f <= 99 for f in figures), "100 is kept for the end of the stream"
    folder.finish()
    final = folder.snapshot()
    assert final.progress == 100
    assert final.layers_done == final.layers_total


@pytest.mark.parametrize("stream", sorted(p.name for p in STREAMS.glob("*.jsonl")))
def test_the_percentage_is_unknown_until_every_layer_size_is_known(stream):
    events = load(stream)
    folder = ProgressFolder()
    for event in events:
        folder.feed(event)
        snapshot = folder.snapshot()
        to_fetch = [layer for layer in folder.layers.values() if not layer.present]
        if any(layer.total is None for layer in to_fetch) and snapshot.progress is not None:
            # Allowed only if a figure was already shown (a late layer must not hide it again).
            assert folder._best_progress is not None
        if snapshot.progress is None:
            assert snapshot.bytes_total is None or not to_fetch


def test_the_classic_stream_counts_layers_and_bytes():
    folder, snapshots = fold_all(load("classic-3-layers.jsonl"))
    first_with_layers = next(s for s in snapshots if s.layers_total)
    assert first_with_layers.progress is None
    assert first_with_layers.layers_total == 3
    folder.finish()
    final = folder.snapshot()
    assert final.bytes_total == 4335400 + 11107850 + 2_000_000
    assert final.bytes_done == final.bytes_total
    assert folder.digest == "sha256:" + "ab" * 32
    assert [layer["id"] for layer in final.layers] == ["79fcf5a213c7", "47cafa6a79d0", "3b33aa221de8"]


def test_the_containerd_stream_with_hidecounts_still_ends_complete():
    folder, snapshots = fold_all(load("containerd-2-layers.jsonl"))
    assert snapshots[-1].layers_done == 2
    folder.finish()
    assert folder.snapshot().progress == 100


def test_an_up_to_date_image_has_no_layers_and_reports_it():
    folder, _ = fold_all(load("classic-up-to-date.jsonl"))
    assert folder.up_to_date
    assert folder.snapshot().layers_total is None
    folder.finish()
    assert folder.snapshot().progress == 100


def test_layers_the_daemon_already_has_count_as_done_without_bytes():
    events = [
        {"status": "Pulling from team/app", "id": "1.0"},
        {"status": "Already exists", "progressDetail": {}, "id": "aaaa"},
        {"status": "Pulling fs layer", "progressDetail": {}, "id": "bbbb"},
        {"status": "Downloading", "progressDetail": {"current": 50, "total": 100}, "id": "bbbb"},
    ]
    folder, snapshots = fold_all(events)
    assert snapshots[-1].bytes_total == 100
    assert snapshots[-1].bytes_done == 50
    assert snapshots[-1].layers_done == 1
    assert snapshots[-1].progress == 25  # half downloaded, nothing extracted


def test_a_retried_layer_does_not_move_the_bar_back():
    events = [
        {"status": "Pulling fs layer", "progressDetail": {}, "id": "bbbb"},
        {"status": "Downloading", "progressDetail": {"current": 80, "total": 100}, "id": "bbbb"},
        {"status": "Retrying in 5 seconds", "progressDetail": {}, "id": "bbbb"},
        {"status": "Downloading", "progressDetail": {"current": 10, "total": 100}, "id": "bbbb"},
    ]
    _, snapshots = fold_all(events)
    figures = [s.progress for s in snapshots if s.progress is not None]
    assert figures == sorted(figures)
    assert figures[-1] == 40


def test_status_lines_become_the_message_and_digest():
    folder, _ = fold_all(
        [
            {"status": "Digest: sha256:" + "cd" * 32},
            {"status": "Status: Downloaded newer image for registry:5000/app:1"},
        ]
    )
    assert folder.digest == "sha256:" + "cd" * 32
    assert folder.message == "Status: Downloaded newer image for registry:5000/app:1"


event = st.fixed_dictionaries(
    {
        "status": st.sampled_from(
            [
                "Pulling fs layer",
                "Waiting",
                "Downloading",
                "Verifying Checksum",
                "Download complete",
                "Extracting",
                "Pull complete",
                "Already exists",
                "Retrying in 1 second",
                "Exists",
            ]
        ),
        "id": st.sampled_from(["l1", "l2", "l3", "l4"]),
        "progressDetail": st.one_of(
            st.just({}),
            st.builds(lambda c, t: {"current": c, "total": t}, st.integers(0, 10**9), st.integers(1, 10**9)),
            st.just({"hidecounts": True}),
        ),
    }
)


@given(st.lists(event, max_size=60))
def test_any_event_sequence_gives_a_percentage_that_never_goes_down(events):
    folder = ProgressFolder()
    best = None
    for item in events:
        folder.feed(item)
        progress = folder.snapshot().progress
        if best is not None:
            assert progress is not None and progress >= best
        if progress is not None:
            assert 0 <= progress <= 99
            best = progress
    folder.finish()
    assert folder.snapshot().progress == 100

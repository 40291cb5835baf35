"""`python -m bench.run --quick` (what `make bench-quick` runs) completes on the real stack and writes its report.

Benchmarks are not timed tests: this only checks that the harness runs end to
end and that its JSON report is well formed, whatever the figures are.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
FIGURES = {
    "pull_overhead_ratio",
    "uptodate_pull_ratio",
    "concurrent_pull_ratio",
    "progress_events_per_s",
    "progress_writes_per_job_s",
    "status_json_p95_ms",
    "first_progress_ms",
}


@pytest.mark.timeout(900)
def test_bench_quick_completes_and_writes_a_well_formed_report(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "DOCKER_"))}
    env["TMPDIR"] = str(tmp_path)  # the bench's work dir (stack, database, logs) goes here
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--out", str(tmp_path / "out"), "--prefix", "quick"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    report = json.loads((tmp_path / "out" / "quick.json").read_text())
    assert report["mode"] == "quick"
    assert report["when"] and report["machine"]["cpus"]
    names = {figure["name"] for figure in report["figures"]}
    assert not FIGURES - names, f"missing figures: {FIGURES - names}"
    for figure in report["figures"]:
        value = figure["value"]
        assert isinstance(value, int | float) and not isinstance(value, bool), figure
        assert math.isfinite(value), figure
        assert isinstance(figure["met"], bool), figure
        assert figure["unit"] and figure["target"], figure
    markdown = (tmp_path / "out" / "quick.md").read_text()
    assert "| figure | value | unit | target | met |" in markdown
    for name in FIGURES:
        assert f"`{name}`" in markdown
    assert "targets met" in done.stdout

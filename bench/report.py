"""Figures, the machine they were measured on, and the Markdown + JSON reports.

The JSON report is ``{"figures": [{"name", "value", "unit", "target", "met", ...}],
"machine": {...}, "when": "ISO-8601", ...}``; every figure also carries ``limit``
and ``op`` (the target as a number and a comparison) and ``detail`` (the raw
numbers behind it). The Markdown report is the same, for people.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OPS = {
    "<=": lambda v, lim: v <= lim,
    "<": lambda v, lim: v < lim,
    ">=": lambda v, lim: v >= lim,
    "==": lambda v, lim: v == lim,
}


@dataclass
class Figure:
    """One measured number with its target."""

    name: str
    value: float
    unit: str
    op: str
    limit: float
    title: str
    detail: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def target(self) -> str:
        return f"{self.op} {_fmt(self.limit)}"

    @property
    def met(self) -> bool:
        return bool(OPS[self.op](self.value, self.limit))

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "value": self.value,
            "unit": self.unit,
            "target": self.target,
            "op": self.op,
            "limit": self.limit,
            "met": self.met,
            "detail": self.detail,
            "note": self.note,
        }

    def line(self) -> str:
        verdict = "met" if self.met else "NOT MET"
        return f"{self.name:28} {_fmt(self.value):>12} {self.unit:10} target {self.target:12} {verdict}"


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: a p95 is a latency somebody really got)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return float(ordered[int(rank) - 1])


def _fmt(value: float) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return f"{int(value):,}"


def _run(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_mb() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError):
        pass
    return None


def machine_info(docker_versions: dict[str, str] | None = None) -> dict[str, Any]:
    """What the figures depend on: CPU, memory, kernel, Python, Docker, load."""
    return {
        "hostname": platform.node(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "memory_mb": _memory_mb(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        **(docker_versions or {}),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def git_commit() -> str:
    return _run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]) or "unknown"


def write_reports(
    figures: list[Figure], out_dir: Path, prefix: str, machine: dict[str, Any], meta: dict[str, Any]
) -> tuple[Path, Path]:
    """Write ``<prefix>.json`` and ``<prefix>.md`` to ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    machine = {**machine, "load_average_at_end": [round(x, 2) for x in os.getloadavg()]}
    report = {
        "figures": [figure.as_json() for figure in figures],
        "machine": machine,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        **meta,
    }
    json_path = out_dir / f"{prefix}.json"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path = out_dir / f"{prefix}.md"
    md_path.write_text(markdown(report))
    return json_path, md_path


def _busy_warning(machine: dict[str, Any]) -> list[str]:
    """A line saying so when other work loaded the machine (load average above half its CPUs at either end)."""
    cpus = machine.get("cpus") or 1
    loads = [machine.get(key) or [0.0] for key in ("load_average_at_start", "load_average_at_end")]
    busiest = max(load[0] for load in loads)
    if busiest <= cpus / 2:
        return []
    return [
        f"**Busy machine**: 1-minute load average up to {busiest:.2f} on {cpus} CPUs at the start or end of the "
        "run; these figures are preliminary.",
        "",
    ]


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: the table, then the numbers behind every figure."""
    machine = report["machine"]
    lines = [
        f"# Benchmark report ({report.get('mode', 'full')} run)",
        "",
        f"Measured {report['when']} on commit `{report.get('commit', '?')}` with `{report.get('command', '')}`.",
        "",
        *_busy_warning(machine),
        "| figure | value | unit | target | met |",
        "|---|---:|---|---|---|",
    ]
    for fig in report["figures"]:
        met = "yes" if fig["met"] else "**no**"
        lines.append(
            f"| {fig['title']} (`{fig['name']}`) | {_fmt(fig['value'])} | {fig['unit']} | {fig['target']} | {met} |"
        )
    lines += ["", "## Machine", ""]
    for key, value in machine.items():
        lines.append(f"- {key}: {value}")
    if report.get("conditions"):
        lines += ["", "## Conditions", "", report["conditions"]]
    lines += ["", "## Details", ""]
    for fig in report["figures"]:
        lines.append(f"### {fig['title']} (`{fig['name']}`)")
        lines.append("")
        if fig.get("note"):
            lines += [fig["note"], ""]
        for key, value in fig["detail"].items():
            lines.append(f"- {key}: {json.dumps(value)}")
        lines.append("")
    return "\n".join(lines)

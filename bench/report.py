"""Benchmark results: tables, target checks with PASS, FAIL or SKIPPED, and the Markdown page."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


class Verdict(enum.Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    SKIPPED = "SKIPPED"


@dataclass
class Check:
    """One target and how the run measured against it. ``reason`` explains a SKIPPED check."""

    name: str
    target: str
    measured: str
    verdict: Verdict
    reason: str = ""

    @classmethod
    def skipped(cls, name: str, target: str, reason: str) -> Check:
        return cls(name, target, "not measured", Verdict.SKIPPED, reason)

    @classmethod
    def compare(cls, name: str, target: str, measured: str, passed: bool) -> Check:
        return cls(name, target, measured, Verdict.PASS if passed else Verdict.FAIL)

    def line(self) -> str:
        text = f"{self.verdict.value:<7} {self.name}: {self.measured} (target: {self.target})"
        return f"{text}; {self.reason}" if self.reason else text


@dataclass
class Table:
    columns: Sequence[str]
    rows: list[Sequence[str]] = field(default_factory=list)
    caption: str = ""

    def markdown(self) -> str:
        lines = []
        if self.caption:
            lines += [self.caption, ""]
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("| " + " | ".join("---" for _ in self.columns) + " |")
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)


@dataclass
class PartResult:
    """The tables and checks of one part of the benchmark, and how its data was set up."""

    title: str
    setup: str
    tables: list[Table] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0


def format_us(value: float) -> str:
    return f"{value:,.1f}"


def format_rate(value: float) -> str:
    return f"{value:,.0f}"


def format_ratio(value: float) -> str:
    return f"{value:.2f}×"


def render_page(environment: Sequence[tuple[str, str]], parts: Sequence[PartResult], analysis: str, command: str) -> str:
    """Return the whole Markdown page: environment, one section per part, every check, then the analysis."""
    lines = [
        "# Benchmarks",
        "",
        f"Written by `{command}`, which measures every figure side by side with its comparison in one run"
        " on one machine, because only the ratios are stable on a shared machine."
        " Absolute figures move with the load that other processes put on the machine.",
        "",
        "## Machine and versions",
        "",
        Table(["item", "value"], [list(pair) for pair in environment]).markdown(),
        "",
    ]
    for part in parts:
        lines += [f"## {part.title}", "", part.setup, ""]
        for table in part.tables:
            lines += [table.markdown(), ""]
        lines.append(f"This part took {part.seconds:.0f} s, setup included.")
        lines.append("")

    checks = [check for part in parts for check in part.checks]
    lines += ["## Targets", ""]
    lines.append(Table(
        ["check", "target", "measured", "result"],
        [[check.name, check.target, check.measured, check.verdict.value + (f": {check.reason}" if check.reason else "")] for check in checks],
    ).markdown())
    lines += ["", analysis.strip(), ""]
    return "\n".join(lines)


def write_page(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")

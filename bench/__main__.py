"""Run the benchmark (``make bench`` runs ``python -m bench``), print a verdict per target, and write the Markdown page."""

from __future__ import annotations

import argparse
import importlib
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

from .context import RunContext
from .databases import postgres_unavailable_reason, postgres_url
from .environment import describe
from .report import Verdict, render_page, write_page
from .scale import FULL, QUICK

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = PROJECT_ROOT / "docs" / "benchmarks.md"
ANALYSIS = Path(__file__).resolve().parent / "analysis.md"
# Part names, in the order they run, and the module of each.
PARTS = {"warm": "bench.warm", "bulk": "bench.bulk", "rotation": "bench.rotation", "http": "bench.serving"}


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure Tenant Config against its floor and peers, print PASS, FAIL or SKIPPED for each target,"
        " and write a Markdown report.",
    )
    parser.add_argument(
        "--parts", default=",".join(PARTS),
        help=f"comma-separated parts to run, from: {', '.join(PARTS)} (default: all)",
    )
    parser.add_argument(
        "--quick", action="store_true",
        help="run small sizes as a smoke test of the harness; its figures cannot be checked against the targets",
    )
    parser.add_argument(
        "--output", type=Path,
        help="Markdown file to write (default: docs/benchmarks.md for a full run of every part,"
        " else instance/bench/benchmarks-partial.md)",
    )
    parser.add_argument(
        "--profile", type=Path, metavar="FOLDER",
        help="also profile the hot paths with pyinstrument and write a text report per path into FOLDER",
    )
    arguments = parser.parse_args(argv)

    arguments.part_names = [name.strip() for name in arguments.parts.split(",") if name.strip()]
    unknown = [name for name in arguments.part_names if name not in PARTS]
    if unknown or not arguments.part_names:
        parser.error(f"invalid --parts {arguments.parts!r}: expected names from {', '.join(PARTS)}")
    return arguments


def default_output(arguments: argparse.Namespace) -> Path:
    if not arguments.quick and arguments.part_names == list(PARTS):
        return DEFAULT_OUTPUT
    return PROJECT_ROOT / "instance" / "bench" / "benchmarks-partial.md"


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    scale = QUICK if arguments.quick else FULL
    output = arguments.output or default_output(arguments)

    root = PROJECT_ROOT / "instance" / "bench"
    root.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="run-", dir=root))
    postgres_unavailable = postgres_unavailable_reason()
    if postgres_unavailable:
        print(f"PostgreSQL lines will be skipped: {postgres_unavailable}", flush=True)

    context = RunContext(workdir, scale, postgres_unavailable, arguments.profile)
    environment = describe(PROJECT_ROOT, None if postgres_unavailable else postgres_url())
    started = time.perf_counter()
    results = []
    try:
        for name in arguments.part_names:
            print(f"Running part {name} ({scale.name} size)...", flush=True)
            part = importlib.import_module(PARTS[name])
            result = part.run(context)
            for check in result.checks:
                print(check.line(), flush=True)
            results.append(result)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    command = "make bench" + (f' BENCH_ARGS="{" ".join(sys.argv[1:])}"' if sys.argv[1:] else "")
    environment.append(("benchmark size", scale.name))
    environment.append(("total run time", f"{time.perf_counter() - started:.0f} s"))
    write_page(output, render_page(environment, results, ANALYSIS.read_text(encoding="utf-8"), command))

    checks = [check for result in results for check in result.checks]
    counts = {verdict: sum(check.verdict is verdict for check in checks) for verdict in Verdict}
    print(
        f"Targets: {counts[Verdict.PASS]} PASS, {counts[Verdict.FAIL]} FAIL, {counts[Verdict.SKIPPED]} SKIPPED."
        f" Wrote {output} in {time.perf_counter() - started:.0f} s.",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The run context that every part of the benchmark gets: its folder, its scale and the reachable databases."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .scale import Scale


@dataclass(frozen=True)
class RunContext:
    workdir: Path
    scale: Scale
    # The reason PostgreSQL cannot be used in this run, or None when it accepts connections.
    postgres_unavailable: str | None
    # Folder for pyinstrument reports of the hot paths, or None to skip profiling.
    profile_dir: Path | None = None

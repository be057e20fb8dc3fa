"""What every part of a benchmark run gets: where to put files, how much work to do, and which databases are reachable."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .scale import Scale


@dataclass(frozen=True)
class RunContext:
    workdir: Path
    scale: Scale
    # Why PostgreSQL cannot be used in this run, or None when it accepts connections.
    postgres_unavailable: str | None
    # Folder for pyinstrument reports of the hot paths, or None to skip profiling.
    profile_dir: Path | None = None

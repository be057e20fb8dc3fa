"""How much work each part of the benchmark does: the sizes that the targets name, and a quick smoke-test size."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    name: str
    # Part 1: tenants to cycle through (within the data key cache's 1024 entries, so every key stays warm).
    warm_tenants: int = 1000
    warm_rounds: int = 20
    warm_calls_per_round: int = 500
    # Part 2: tenants with one value each, and full passes per contender.
    bulk_tenants: int = 100_000
    bulk_passes: int = 3
    # Part 3: tenants, and the values per tenant of each rotation run.
    rotation_tenants: int = 10_000
    rotation_values: tuple[int, ...] = (8, 32)
    # Part 4: concurrent clients, measured seconds per endpoint, split into interleaved segments that each
    # start with an unmeasured warm-up.
    http_clients: int = 32
    http_seconds: float = 30.0
    http_segments: int = 3
    http_warmup_seconds: float = 1.0


FULL = Scale("full")
QUICK = Scale(
    "quick",
    warm_tenants=200,
    warm_rounds=4,
    warm_calls_per_round=200,
    bulk_tenants=5_000,
    bulk_passes=2,
    rotation_tenants=500,
    http_clients=8,
    http_seconds=3.0,
    http_warmup_seconds=0.5,
)

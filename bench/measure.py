"""Timing helpers. Contenders run interleaved in the same process, so that machine noise hits each of them alike."""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Return the nearest-rank percentile of values sorted in ascending order."""
    if not sorted_values:
        raise ValueError("percentile of an empty sample")
    rank = max(1, round(fraction * len(sorted_values) + 0.5))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass(frozen=True)
class Latency:
    """Per-call latency of one contender, in microseconds, overall and as the median of each round."""

    median_us: float
    p99_us: float
    samples: int
    round_medians_us: tuple[float, ...]


def sample_latencies(
    contenders: dict[str, Callable[[int], object]],
    inputs: int,
    rounds: int,
    calls_per_round: int,
    seed: int = 1,
) -> dict[str, Latency]:
    """Time single calls of each contender, interleaving them round by round.

    Each call gets an input index in ``range(inputs)``. Every contender gets
    the same sequence of indexes, and the order of contenders is shuffled in
    each round, so that a burst of load on the machine does not fall on one
    contender only. The garbage collector runs between rounds, not inside one.
    """
    generator = random.Random(seed)
    order = list(contenders)
    samples: dict[str, list[int]] = {name: [] for name in contenders}
    round_medians: dict[str, list[float]] = {name: [] for name in contenders}
    position = 0
    for _ in range(rounds):
        indexes = [(position + offset) % inputs for offset in range(calls_per_round)]
        position += calls_per_round
        generator.shuffle(order)
        for name in order:
            call = contenders[name]
            timings = samples[name]
            gc.collect()
            round_timings = []
            for index in indexes:
                started = time.perf_counter_ns()
                call(index)
                round_timings.append(time.perf_counter_ns() - started)
            timings += round_timings
            round_medians[name].append(percentile(sorted(round_timings), 0.5) / 1000)

    results = {}
    for name, timings in samples.items():
        timings.sort()
        results[name] = Latency(
            percentile(timings, 0.5) / 1000, percentile(timings, 0.99) / 1000, len(timings), tuple(round_medians[name]),
        )
    return results


def ratio_range(numerators: Sequence[float], denominators: Sequence[float]) -> tuple[float, float]:
    """Return the smallest and largest ratio of paired values, such as two contenders' medians in the same rounds."""
    ratios = [numerator / denominator for numerator, denominator in zip(numerators, denominators)]
    return min(ratios), max(ratios)


@dataclass(frozen=True)
class Throughput:
    """Items per second of one contender: the median over its passes, and every pass."""

    per_second: float
    passes: tuple[float, ...]


def sample_throughput(contenders: dict[str, Callable[[], int]], passes: int, seed: int = 1) -> dict[str, Throughput]:
    """Time whole passes of each contender, interleaved as in ``sample_latencies``.

    Each contender returns how many items it processed in one pass.
    """
    generator = random.Random(seed)
    order = list(contenders)
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(passes):
        generator.shuffle(order)
        for name in order:
            gc.collect()
            started = time.perf_counter()
            count = contenders[name]()
            rates[name].append(count / (time.perf_counter() - started))

    results = {}
    for name, values in rates.items():
        ordered = sorted(values)
        results[name] = Throughput(percentile(ordered, 0.5), tuple(values))
    return results

"""Shared statistics for the benchmarks: latency summaries in milliseconds."""

from __future__ import annotations

import statistics


def latency_ms(samples: list[float]) -> dict[str, float]:
    """Median, p99 and max of durations given in seconds, as milliseconds."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"median": statistics.median(ordered) * 1e3, "p99": p99 * 1e3,
            "max": ordered[-1] * 1e3}


def fmt_ms(summary: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.2f}ms" for k, v in summary.items())

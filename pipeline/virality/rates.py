"""Event-time rates over epoch-aligned minute buckets.

``posts_per_minute(buckets, watermark, w)`` is the number of posts in the ``w`` most recent
minute buckets ending with the bucket that holds the watermark, divided by ``w``. Buckets are
closed-open, ``[m, m + 60)``; the watermark is the newest event time seen. Event time, not wall
time: a replay at 100x gives the same rates as the live stream did.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

WINDOWS: dict[str, int] = {"1m": 1, "15m": 15, "1h": 60}


def window_minutes(watermark: float, w: int) -> range:
    """Start times of the ``w`` minute buckets ending with the watermark's bucket."""
    last = int(watermark // 60) * 60
    return range(last - (w - 1) * 60, last + 60, 60)


def posts_per_minute(count_at: Callable[[int], int], watermark: float, w: int) -> float:
    """Mean posts per minute over the ``w`` buckets ending at the watermark's bucket."""
    return sum(count_at(m) for m in window_minutes(watermark, w)) / w


LONGEST = max(WINDOWS.values())


def window_rates(counts_newest_first: Sequence[int]) -> dict[str, float]:
    """Every window's posts per minute from the newest ``LONGEST`` minute counts, in one pass.

    ``counts_newest_first[0]`` is the watermark's bucket, ``[1]`` the minute before, ...
    """
    ends = {w: label for label, w in WINDOWS.items()}
    out: dict[str, float] = {}
    total = 0
    for i, n in enumerate(counts_newest_first[:LONGEST], 1):
        total += n
        label = ends.get(i)
        if label is not None:
            out[label] = total / i
    return out


# Growth compares the last hour with the hour before: the newest 120 minute buckets.
HISTORY = 2 * LONGEST


def growth_ratio(counts_newest_first: Sequence[int]) -> float | None:
    """Posts in the last hour ÷ posts in the hour before (event time, ending at the
    watermark's bucket); None when the hour before had none (growth from nothing is not a
    ratio)."""
    last = sum(counts_newest_first[:LONGEST])
    before = sum(counts_newest_first[LONGEST:HISTORY])
    return last / before if before else None


def doubling_time_seconds(growth: float | None) -> float | None:
    """Doubling time of an exponential that grows by ``growth`` per hour: 3600 ln 2 / ln g.

    ``math.inf`` when not growing (g <= 1); None when there is no ratio.
    """
    if growth is None:
        return None
    if growth <= 1:
        return math.inf
    return 3600 * math.log(2) / math.log(growth)


# Per region, the windows that are not too noisy to show on a map: a region's single minute
# is mostly 0 or 1.
REGION_WINDOWS: dict[str, int] = {"15m": 15, "1h": 60}


def region_rates(regions_newest_first: Sequence[Mapping[str, int]]) -> dict[str, dict[str, float]]:
    """``{window: {region: posts per minute}}`` over the newest 15 and 60 minute buckets
    (``regions_newest_first[0]`` is the watermark's), regions without posts left out."""
    out: dict[str, dict[str, float]] = {}
    totals: dict[str, int] = {}
    ends = {w: label for label, w in REGION_WINDOWS.items()}
    for i, by_region in enumerate(regions_newest_first[: max(REGION_WINDOWS.values())], 1):
        for region, n in by_region.items():
            totals[region] = totals.get(region, 0) + n
        label = ends.get(i)
        if label is not None:
            out[label] = {region: n / i for region, n in totals.items() if n}
    for label, w in REGION_WINDOWS.items():  # a short series: the windows it did not reach
        if label not in out:
            out[label] = {region: n / w for region, n in totals.items() if n}
    return out

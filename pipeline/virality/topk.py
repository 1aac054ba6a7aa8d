"""Which hashtags get series: the exporter's cap (DESIGN "Metric contract").

Counts for every hashtag stay in the tables; only the series are capped, so ``/metrics`` stays
small with a long tail of millions of tags. A worker exports the ``k`` hashtags with the
highest current rate (posts per minute over the last 15 minutes of event time; ties broken by
total posts, then by name, so the choice is deterministic) plus an always-export list.
``k = 0`` exports every hashtag.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable

RANK_WINDOW = "15m"

# The #MeToo movement across languages (DESIGN "Scenarios"), normalised.
MOVEMENT = (
    "metoo",
    "balancetonporc",
    "yotambien",
    "وأنا_كمان",
    "وانا_ايضا",
    "quellavoltache",
    "moiaussi",
)


def select(
    candidates: Iterable[tuple[str, float, int]], k: int, always: Collection[str] = ()
) -> set[str]:
    """Tags to export from ``(tag, rate, total)`` candidates."""
    candidates = list(candidates)
    if k <= 0:
        return {tag for tag, _, _ in candidates}
    top = heapq.nsmallest(k, candidates, key=lambda c: (-c[1], -c[2], c[0]))
    present = {tag for tag, _, _ in candidates}
    return {tag for tag, _, _ in top} | (set(always) & present)

"""Which hashtags get series: the exporter's cap (DESIGN "Metric contract").

Counts for every hashtag stay in the tables; only the series are capped, so ``/metrics`` stays
small with a long tail of millions of tags. A worker exports the ``k`` hashtags with the
highest trend score (:mod:`pipeline.virality.trend`: a tag that is taking off now, however
small, before a large one that is steady; ties broken by total posts, then by name, so the
choice is deterministic) plus an always-export list (which the worker extends with every
movement's tags). ``k = 0`` exports every hashtag.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable


def select(
    candidates: Iterable[tuple[str, float, int]], k: int, always: Collection[str] = ()
) -> set[str]:
    """Tags to export from ``(tag, score, total)`` candidates."""
    candidates = list(candidates)
    if k <= 0:
        return {tag for tag, _, _ in candidates}
    top = heapq.nsmallest(k, candidates, key=lambda c: (-c[1], -c[2], c[0]))
    present = {tag for tag, _, _ in candidates}
    return {tag for tag, _, _ in top} | (set(always) & present)

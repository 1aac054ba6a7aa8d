"""Which hashtags get series: the exporter's cap (DESIGN "Metric contract").

Counts for every hashtag stay in the tables; only the series are capped, so ``/metrics`` stays
small with a long tail of millions of tags. A worker exports the ``k`` hashtags with the
highest trend score (:mod:`pipeline.virality.trend`: a tag that is taking off now, however
small, before a large one that is steady; ties broken by total posts, then by name, so the
choice is deterministic) plus an always-export list (which the worker extends with every
movement's tags). ``k = 0`` exports every hashtag.

:func:`select` ranks a list of scored candidates: what ``spread analyze`` and a worker that
owns few hashtags use. :func:`top_active` reaches the same top ``k`` from
:class:`pipeline.virality.activity.RecentPosts` without scoring the long tail: a worker with
a million hashtags scores a few thousand.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Iterable
from itertools import islice

from pipeline.virality.activity import score_bound


def _order(c: tuple[str, float, int]) -> tuple[float, int, str]:
    return (-c[1], -c[2], c[0])


def select(
    candidates: Iterable[tuple[str, float, int]], k: int, always: Collection[str] = ()
) -> set[str]:
    """Tags to export from ``(tag, score, total)`` candidates."""
    candidates = list(candidates)
    if k <= 0:
        return {tag for tag, _, _ in candidates}
    top = heapq.nsmallest(k, candidates, key=_order)
    present = {tag for tag, _, _ in candidates}
    return {tag for tag, _, _ in top} | (set(always) & present)


def top_active(
    groups: Iterable[tuple[int, Collection[str]]],
    score: Callable[[str], tuple[float, int] | None],
    k: int,
    budget: int,
    bound: Callable[[int], float] = score_bound,
) -> tuple[list[str], int, bool]:
    """The best ``k`` by (score, total, name) among tags with recent posts.

    ``groups`` are ``(posts in the span, tags)`` from the most posts down
    (:meth:`RecentPosts.groups`); ``score(tag)`` is its ``(trend score, total)``, or None for a
    tag that is not a candidate (a partition given away); ``bound(posts)`` is the highest score
    a tag with that many recent posts can have (:func:`score_bound` for the trend score).
    Scoring stops at the first group whose bound is below the ``k``-th best score so far,
    which makes the answer exact; or once ``budget`` tags have been scored, which makes it the
    best of the most active ``budget`` (the last group scored in part, any part of it): only a
    long tail of tags with a post or two each, all scoring about the same, gets there.

    Returns the tags best first, how many were scored, and whether the answer is exact.
    """
    if k <= 0:
        return [], 0, True
    scored: list[tuple[str, float, int]] = []
    best: list[float] = []  # min-heap of the k best scores so far
    exact = True
    for posts, tags in groups:
        if len(best) == k and bound(posts) < best[0]:
            break
        room = budget - len(scored)
        if len(tags) > room:
            # Any part of it: a million-tag group is not sorted every round to pick by name.
            exact = False
            tags = list(islice(tags, room))
        for tag in tags:
            result = score(tag)
            if result is None:
                continue
            scored.append((tag, *result))
            if len(best) < k:
                heapq.heappush(best, result[0])
            elif result[0] > best[0]:
                heapq.heapreplace(best, result[0])
        if not exact:
            break
    top = heapq.nsmallest(k, scored, key=_order)
    return [tag for tag, _, _ in top], len(scored), exact

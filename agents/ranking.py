"""Which hashtags get series: chosen by a timer, not by the scrape.

Ranking every hashtag a worker owns by trend score costs about 25 µs a tag (its newest
buckets, then :func:`pipeline.virality.trend.trend_score`): half a minute with a million
tags. So the collector's timer (:class:`agents.collector.HashtagCollector`) ranks every
``INTERVAL`` seconds, and only the candidates that can matter
(:func:`pipeline.virality.topk.top_active` over :attr:`Counters.recent`).

The rule (README "Metric contract"): a worker that owns at most ``k`` hashtags exports them
all. Otherwise it exports the ``k`` best by (trend score, total, name) among the hashtags with
posts in the newest minutes (their score can be above 0; see
:mod:`pipeline.virality.activity`), then, if fewer than ``k`` have such posts, the hashtags
with the most posts. With the virality signals off, the 15-minute rate takes the score's
place.
"""

from __future__ import annotations

import heapq
import time
from typing import TYPE_CHECKING

from agents.changelog import plain_dict
from pipeline.virality import movements
from pipeline.virality.activity import score_bound
from pipeline.virality.topk import top_active
from pipeline.virality.trend import CURRENT, trend_score

if TYPE_CHECKING:
    from agents.counters import Counters

INTERVAL = 5.0  # seconds between two rounds: how late a new trend gets its series, at most
BUDGET = 4000  # tags scored per ranking at most: ~0.1 s, 2 % of a core at INTERVAL
# The most of the event loop's time the ranking may take. Scoring a tag reads HISTORY
# minute buckets from tables of millions, so a ranking of BUDGET tags took ~0.45 s under the
# soak's long tail (9 % of a saturated loop at INTERVAL), time taken from counting.
SHARE = 0.05


class Ranking:
    """The hashtags the exporter gives series to (beyond the always-export list)."""

    def __init__(self, counters: Counters, k: int, virality: bool = True) -> None:
        self.counters = counters
        self.k = k
        self.virality = virality
        self.chosen: list[str] | None = None  # None: not ranked (yet, or no need)
        self.exact = True  # the last ranking scored every tag that could enter the top k
        self._next_at = float("-inf")  # time.monotonic() before which a ranking is not due

    def clear(self) -> None:
        """Every owned hashtag is exported: nothing to choose (yet)."""
        self.chosen, self.exact = None, True

    def due(self) -> bool:
        """Whether the last ranking's duration, at most ``SHARE`` of the time since it
        started, allows another (or nothing is chosen yet): a ranking that took 0.45 s waits
        9 s, one of 0.1 s the timer's ``INTERVAL``. Under load new trends get their series
        later, and the time goes to counting instead."""
        return self.chosen is None or time.monotonic() >= self._next_at

    def refresh(self, owned: frozenset[int], watermark: float) -> None:
        start = time.monotonic()
        self.chosen = self._rank(owned, watermark)
        self._next_at = start + (time.monotonic() - start) / SHARE

    def _rank(self, owned: frozenset[int], watermark: float) -> list[str]:
        counters = self.counters
        totals = plain_dict(counters.totals)
        partition_of = counters.partition_of
        if self.virality:
            keys = counters.recent_keys(watermark)
            score_of, bound = trend_score, score_bound
        else:
            keys = counters.recent_keys(watermark, CURRENT)
            score_of, bound = _rate, _rate_bound
        recent_counts = counters.recent_counts

        def score(tag: str) -> tuple[float, int] | None:
            value = totals.get(tag)
            if not value or partition_of(tag) not in owned:
                return None
            return score_of(recent_counts(tag, keys)), value["n"]

        chosen, _, self.exact = top_active(counters.recent.groups(), score, self.k, BUDGET, bound)
        if len(chosen) < self.k:
            taken = set(chosen)
            rest = (
                (tag, value["n"])
                for tag, value in totals.items()
                if value
                and tag not in taken
                and not movements.is_key(tag)
                and partition_of(tag) in owned
            )
            best = heapq.nsmallest(self.k - len(chosen), rest, key=lambda c: (-c[1], c[0]))
            chosen.extend(tag for tag, _ in best)
        return chosen


def _rate(counts: list[int]) -> float:
    return sum(counts[:CURRENT]) / CURRENT


def _rate_bound(posts: int) -> float:
    return posts / CURRENT

"""Trend score: how far a hashtag's current rate is above its own recent baseline.

A z-score in event time, from the same newest-first minute counts as the rates
(:mod:`pipeline.virality.rates`), so the live worker and ``spread analyze`` compute the same
number from the same buckets and no state beyond them is kept:

- **current** ``x``: mean posts per minute over the newest ``CURRENT`` (15) buckets, the
  watermark's bucket included (the ``15m`` rate);
- **baseline**: an exponentially weighted mean ``μ`` and variance ``σ²`` of the per-minute
  counts of the ``HISTORY − CURRENT`` (105) minutes before those, with a half-life of
  ``HALF_LIFE`` (30) minutes counted back from the newest baseline minute;
- **score** ``z = (x − μ) / sqrt((σ² + μ + 1) / CURRENT)``: the deviation of a 15-minute mean
  in units of its standard error. ``μ`` is the Poisson variance a steady tag has even when
  its baseline happens to be flat, and ``+ 1`` keeps a tag with no history from dividing by
  zero (a brand new tag at ``x`` posts/min scores ``x·√15``).

A steady tag scores about 0 whatever its size; a small tag that jumps 50× (1 → 50 posts/min)
scores about 134 and outranks a large one that is steady (1,000 → 1,000) or merely rising by
10 % (1,000 → 1,100: about 12). A tag that is fading scores below 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from operator import mul

from pipeline.virality.rates import HISTORY

CURRENT = 15
HALF_LIFE = 30.0
_DECAY = 0.5 ** (1 / HALF_LIFE)


_WEIGHTS = tuple(_DECAY**j for j in range(HISTORY - CURRENT))
_TOTAL_WEIGHT = sum(_WEIGHTS)


def baseline(counts_newest_first: Sequence[int]) -> tuple[float, float]:
    """EWMA mean and variance of the baseline minutes (``[CURRENT:HISTORY]``), missing
    minutes counting as 0."""
    older = counts_newest_first[CURRENT:HISTORY]
    if not any(older):
        return 0.0, 0.0
    # zip stops at the shorter: missing minutes add nothing to either sum. map() keeps the
    # loop in C: the ranking timer computes this for a few thousand hashtags every round.
    mean = sum(map(mul, _WEIGHTS, older)) / _TOTAL_WEIGHT
    square = sum(map(mul, _WEIGHTS, map(mul, older, older))) / _TOTAL_WEIGHT
    return mean, max(square - mean * mean, 0.0)


def trend_score(counts_newest_first: Sequence[int]) -> float:
    """The z-score of the newest ``CURRENT`` minutes against the baseline before them."""
    current = sum(counts_newest_first[:CURRENT]) / CURRENT
    mean, variance = baseline(counts_newest_first)
    return (current - mean) / math.sqrt((variance + mean + 1) / CURRENT)

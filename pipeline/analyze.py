"""``spread analyze``: the worker's numbers, offline, from a file.

Reads events exactly as ``spread replay`` would send them (any format, same order and
filters), judges them with the worker's own :func:`summarise`, and computes what ``/metrics``
would show after the replay: events by outcome, per-hashtag totals, totals and first-seen
times by region, regions reached, and the window rates at the final watermark
(:mod:`pipeline.virality.rates`). A test replays files of every format through a live worker
and checks both agree.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import aggregate
from pipeline.aggregate import summarise
from pipeline.replay import ReplayStats, Selection, selected
from pipeline.settings import DEFAULT_GRACE_SECONDS
from pipeline.virality import movements, users
from pipeline.virality.generation import mean_lag
from pipeline.virality.parents import ParentClock
from pipeline.virality.rates import (
    HISTORY,
    doubling_time_seconds,
    growth_ratio,
    region_rates,
    window_minutes,
    window_rates,
)
from pipeline.virality.reproduction import Estimate, cori, history_minutes
from pipeline.virality.trend import trend_score


@dataclass
class Analysis:
    stats: ReplayStats
    accepted: int = 0
    late: int = 0
    rejected: Counter = field(default_factory=Counter)
    watermark: float | None = None
    earliest: float | None = None  # the oldest accepted event's time
    posts: Counter = field(default_factory=Counter)
    regions: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    first_seen: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    minutes: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    children: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    # tag -> (minute, region) -> posts: the per-region rates
    region_minutes: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    users: dict[str, Any] = field(default_factory=dict)  # tag -> HyperLogLog sketch
    # For ``detail``'s hashtag only: posts per (region, hour start), for spread report.
    region_hours: Counter = field(default_factory=Counter)
    # w_1..w_K for R_t: configured, else learned from parent links as the worker does.
    interval: tuple[float, ...] = ()
    parents: ParentClock = field(default_factory=ParentClock)
    # The movements (pipeline.virality.movements), keyed by name, with the same fields: what
    # the worker exports as movement_*. None inside a movements analysis.
    movements: Analysis | None = None

    def _recent(self, tag: str) -> list[int] | None:
        if self.watermark is None:
            return None
        window = reversed(window_minutes(self.watermark, HISTORY))
        return [self.minutes[tag].get(m, 0) for m in window]

    def weights(self) -> list[float]:
        return list(self.interval) or self.parents.interval.weights()

    def reproduction(self, tag: str, at: float | None = None) -> Estimate | None:
        """R_t with the watermark at ``at`` (default: the final one), from the same buckets
        and estimator as the worker."""
        at = self.watermark if at is None else at
        if at is None:
            return None
        weights = self.weights()
        minutes = list(reversed(window_minutes(at, history_minutes(weights))))
        total, kids = self.minutes[tag], self.children[tag]
        return cori([kids.get(m, 0) for m in minutes], [total.get(m, 0) for m in minutes], weights)

    def region_rates(self, tag: str) -> dict[str, dict[str, float]]:
        if self.watermark is None:
            return {}
        per = defaultdict(dict)
        for (m, region), n in self.region_minutes[tag].items():
            per[m][region] = n
        window = reversed(window_minutes(self.watermark, HISTORY))
        return region_rates([per.get(m, {}) for m in window])

    def rates(self, tag: str) -> dict[str, float]:
        counts = self._recent(tag)
        return window_rates(counts) if counts is not None else {}

    def signals(self, tag: str) -> dict[str, Any]:
        """The hashtag's exported values, from one read of its newest minute buckets."""
        counts = self._recent(tag)
        growth = growth_ratio(counts) if counts is not None else None
        return {
            "posts": self.posts[tag],
            "regions": dict(self.regions[tag]),
            "regions_reached": len(self.regions[tag]),
            "first_seen": self.first_seen[tag],
            # The spread timeline: regions in the order they were reached.
            "timeline": [
                region for region, _ in sorted(self.first_seen[tag].items(), key=lambda kv: kv[1])
            ],
            "posts_per_minute": window_rates(counts) if counts is not None else {},
            "growth_ratio": growth,
            "doubling_time_seconds": _json_number(doubling_time_seconds(growth)),
            "trend_score": trend_score(counts) if counts is not None else None,
            "region_posts_per_minute": self.region_rates(tag),
            "reproduction_number": _estimate(self.reproduction(tag)),
            "unique_users": self.users[tag].get_estimate() if tag in self.users else 0.0,
        }

    def to_json(self, tags: Sequence[str] | None = None) -> dict[str, Any]:
        chosen = tags if tags is not None else [t for t, _ in self.posts.most_common()]
        return {
            "events": {
                "accepted": self.accepted,
                "rejected": dict(self.rejected),
                "late": self.late,
            },
            "watermark": self.watermark,
            "skipped_source_lines": self.stats.skipped,
            "generation_interval": {
                "mean_seconds": 60 * mean_lag(self.weights()),
                "learned_from": self.parents.interval.samples,
                "configured": bool(self.interval),
            },
            "hashtags": {tag: self.signals(tag) for tag in chosen if tag in self.posts},
            **(
                {"movements": {name: self.movements.signals(name) for name in self.movements.posts}}
                if self.movements is not None
                else {}
            ),
        }


def _estimate(e: Estimate | None) -> dict[str, float] | None:
    return None if e is None else {"mean": e.mean, "lower": e.lower, "upper": e.upper}


def _json_number(value: float | None) -> float | str | None:
    """JSON has no infinity: ``"+Inf"``, as Prometheus writes it."""
    return "+Inf" if value == math.inf else value


def analyze(
    paths: Sequence[str | Path],
    selection: Selection,
    movement_tags: Mapping[str, Iterable[str]] = movements.DEFAULT,
    interval: Sequence[float] = (),
    detail: str | None = None,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
) -> Analysis:
    """``movement_tags``: the movements to count, as the worker's ``--movement``;
    ``interval``: a configured generation interval (default: learned, as the worker does);
    ``detail``: a normalised hashtag whose posts by region and hour to keep as well;
    ``grace_seconds``: lateness as the worker's ``--grace-seconds``, against the watermark of
    the events before, in replay order (one partition's view)."""
    out = Analysis(ReplayStats(), interval=tuple(interval))
    out.movements = moves = Analysis(out.stats, interval=out.interval, parents=out.parents)
    index = movements.index(movement_tags)
    for _ts, line in selected(paths, out.stats, selection):
        late_before = None if out.watermark is None else out.watermark - grace_seconds
        s = summarise(
            line, envelope=True, movements=index, parents=out.parents, late_before=late_before
        )
        out.late += s.late
        out.accepted += s.accepted
        out.rejected.update(reason for reason, _ in s.rejected)
        if s.max_ts is not None:  # one line: its event's time, when accepted
            out.watermark = s.max_ts if out.watermark is None else max(out.watermark, s.max_ts)
            out.earliest = s.max_ts if out.earliest is None else min(out.earliest, s.max_ts)
        for tag, (n, by_region, hours, first, who) in s.tags.items():
            into = out
            if movements.is_key(tag):
                into, tag = moves, movements.name_of(tag)
            into.posts[tag] += n
            into.regions[tag].update(by_region)
            if tag == detail and into is out and s.max_ts is not None:
                hour = int(s.max_ts // 3600) * 3600  # one event per line: its time
                for region, count in by_region.items():
                    out.region_hours[(region, hour)] += count
            minutes, region_minutes = into.minutes[tag], into.region_minutes[tag]
            for minute, (posts, children, where) in aggregate.minutes(hours):
                minutes[minute] += posts
                if children:
                    into.children[tag][minute] += children
                for region, count in where.items():
                    region_minutes[(minute, region)] += count
            if who:
                sketch = into.users.get(tag)
                if sketch is None:
                    sketch = into.users[tag] = users.sketch(())
                for user in who:
                    sketch.update(user)
            seen = into.first_seen[tag]
            for region, ts in first.items():
                if region not in seen or ts < seen[region]:
                    seen[region] = ts
    moves.watermark, moves.earliest = out.watermark, out.earliest
    return out

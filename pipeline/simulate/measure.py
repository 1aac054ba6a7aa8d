"""Measuring a simulation's output: the figures the calibration compares, from event lines.

:class:`Tally` reads events as they stream (from a file or straight from the model) and keeps
only counters, plus the distinct users of the platforms whose scenario sets
``users.distinct``. "Events carrying the tag" are events whose hashtags, normalised
(:func:`pipeline.hashtags.distinct`), include the movement's tag, whatever their kind.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from pipeline.hashtags import distinct, normalise
from pipeline.simulate.scenario import Scenario
from pipeline.simulate.timeline import HOUR

PLURAL = {"post": "posts", "repost": "reposts", "reply": "replies", "reaction": "reactions"}


class Tally:
    """Counters over events, keyed by platform, region and hour after the scenario's start."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.tag = normalise(scenario.tag)
        self.roots = {inf.id for inf in scenario.influencers}
        self.user_windows = {
            p.name: (p.users.from_hours, p.users.to_hours or scenario.hours)
            for p in scenario.platforms
            if p.users.distinct is not None
        }
        self.users: dict[str, set[str]] = {name: set() for name in self.user_windows}
        self.tagged: Counter[tuple[str, str, int]] = Counter()  # (platform, region, hour)
        self.tags: Counter[tuple[str, str]] = Counter()  # (normalised tag, region)
        self.children: Counter[tuple[str, str]] = Counter()  # (influencer id, kind)
        self.kinds: Counter[tuple[str, str]] = Counter()  # (platform, kind)
        self.events = 0
        self.out_of_order = 0
        self.last_ts = float("-inf")
        self._norm: dict[tuple[str, ...], list[str]] = {}

    def add_lines(self, lines: Iterable[bytes]) -> Tally:
        for line in lines:
            if line.strip():
                self.add(orjson.loads(line))
        return self

    def add(self, event: dict[str, Any]) -> None:
        self.events += 1
        ts = event["ts"]
        if ts < self.last_ts:
            self.out_of_order += 1
        self.last_ts = max(ts, self.last_ts)
        platform, region = event["platform"], event["region"]
        written = tuple(event["hashtags"])
        tags = self._norm.get(written)
        if tags is None:
            tags = self._norm[written] = distinct(written)
        for tag in tags:
            self.tags[(tag, region)] += 1
        self.kinds[(platform, event["kind"])] += 1
        if event["parent"] in self.roots:
            self.children[(event["parent"], event["kind"])] += 1
        if self.tag in tags:
            hours = (ts - self.scenario.start) / HOUR
            self.tagged[(platform, region, int(hours))] += 1
            window = self.user_windows.get(platform)
            if window is not None and window[0] <= hours < window[1]:
                self.users[platform].add(event["user"])

    def count(
        self,
        platform: str,
        from_hours: float,
        to_hours: float,
        regions: Iterable[str] | None = None,
    ) -> int:
        """Events carrying the tag on ``platform`` in whole hours [from, to) (and regions)."""
        wanted = None if regions is None else set(regions)
        return sum(
            n
            for (p, r, h), n in self.tagged.items()
            if p == platform and from_hours <= h < to_hours and (wanted is None or r in wanted)
        )

    def per_day(self, platform: str, regions: Iterable[str] | None = None) -> list[int]:
        days = int(-(-self.scenario.hours // 24))
        return [self.count(platform, 24 * d, 24 * (d + 1), regions) for d in range(days)]


@dataclass(frozen=True, slots=True)
class Row:
    figure: str
    target: float  # at the scale measured
    measured: float

    @property
    def ratio(self) -> float:
        return self.measured / self.target if self.target else float("nan")


def calibration(tally: Tally, scale: float) -> list[Row]:
    """Every calibrated figure of the scenario: its target times ``scale``, and the tally's."""
    sc = tally.scenario
    rows = []
    tag = sc.tag
    for p in sc.platforms:
        if p.target is not None:
            t = p.target
            where = f" in {'/'.join(t.regions)}" if t.regions else ""
            rows.append(
                Row(
                    f"{p.name} events carrying {tag}{where}, hours {t.from_hours:g}-{t.to_hours:g}",
                    t.events * scale,
                    tally.count(p.name, t.from_hours, t.to_hours, t.regions),
                )
            )
        if p.users.distinct is not None:
            lo, hi = tally.user_windows[p.name]
            rows.append(
                Row(
                    f"{p.name} distinct users of those, hours {lo:g}-{hi:g}",
                    p.users.distinct * scale,
                    len(tally.users[p.name]),
                )
            )
    for inf in sc.influencers:
        for kind, n in inf.audience:
            if n:
                rows.append(
                    Row(
                        f"{inf.user}'s post: direct {PLURAL[kind]}",
                        round(n * scale),
                        tally.children[(inf.id, kind)],
                    )
                )
    return rows

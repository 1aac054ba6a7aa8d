"""Stage 2: ``hashtag-deltas`` → per-hashtag counters in changelog-backed tables.

Tables (both keyed by the normalised hashtag, on the partitions of ``hashtag-deltas``, so each
worker owns a disjoint set of hashtags and exports only those):

``hashtag-totals``
    ``{"n": posts, "r": {region: posts}, "f": {region: first_ts}, "m": marks}``
``hashtag-minutes`` (tumbling 60 s windows, event time, closed-open ``[m, m + 60)``)
    ``[posts, marks]`` per (hashtag, minute)

``marks`` is the highest source offset applied per ``posts`` partition; a delta at or below its
mark is a redelivery and is skipped (:mod:`pipeline.deltas`). Each delta record is applied with
one table write per key it touches: the records are already pre-aggregated by stage 1.

Windows do not expire by wall clock: Faust's expiry compares window ends with ``time.time()``,
which would delete every window of a historical replay at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipeline import deltas as wire

if TYPE_CHECKING:
    import faust

TOTALS_TABLE = "hashtag-totals"
MINUTES_TABLE = "hashtag-minutes"
MINUTE = 60.0


class Counters:
    def __init__(self, app: faust.App, deltas: faust.TopicT, partitions: int) -> None:
        self.app = app
        self.partitions = partitions
        self.totals = app.Table(TOTALS_TABLE, default=None, partitions=partitions)
        self.minutes = app.Table(MINUTES_TABLE, default=None, partitions=partitions).tumbling(
            MINUTE, expires=None
        )
        # Newest event time in the deltas this worker applied; the watermark of last resort
        # when it owns no partition of ``posts``.
        self.delta_watermark: float | None = None
        self._partition_of: dict[str, int] = {}

        @app.agent(deltas, name="counters")
        async def counters(stream: faust.StreamT) -> None:
            async for value in stream:
                self.apply(wire.decode(value))

        self.agent = counters

    def apply(self, delta: dict[str, Any]) -> None:
        """Apply one delta record; must run inside stream iteration (writes go to its partition)."""
        sp, so = delta["sp"], delta["so"]
        wm = delta.get("wm")
        if wm is not None and (self.delta_watermark is None or wm > self.delta_watermark):
            self.delta_watermark = wm
        totals = self.totals
        minutes_table = self.minutes.table
        data = minutes_table.data
        window = minutes_table.window
        for tag, (posts, by_region, by_minute, first) in delta["t"].items():
            new = wire.apply_total(totals.get(tag), sp, so, posts, by_region, first)
            if new is not None:
                totals[tag] = new
            for minute, count in by_minute:
                (rng,) = window.ranges(float(minute))
                value = wire.apply_bucket(data.get((tag, rng)), sp, so, count)
                if value is not None:
                    minutes_table[(tag, rng)] = value

    def minute_count(self, tag: str, minute: int) -> int:
        table = self.minutes.table
        (rng,) = table.window.ranges(float(minute))
        value = table.data.get((tag, rng))
        return value[0] if value else 0

    def partition_of(self, tag: str) -> int:
        p = self._partition_of.get(tag)
        if p is None:
            p = self._partition_of[tag] = wire.partition_for(tag, self.partitions)
        return p

"""Prometheus exposition, read from the tables at scrape time.

A custom collector (prometheus_client's pattern): nothing is updated per event; every scrape
walks the tables of the partitions this worker owns right now, so after a rebalance a worker
stops exporting the hashtags it gave away and ``sum by (hashtag)`` over all workers is exact.
It runs on the worker's event loop (a Faust web page), so it sees the tables between two
stream steps, never halfway through one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from agents.changelog import plain_dict
from pipeline.settings import DELTAS, POSTS
from pipeline.virality.rates import window_rates

if TYPE_CHECKING:
    import faust

    from agents.counters import Counters
    from agents.ingest import Ingest


class SpreadCollector:
    def __init__(self, app: faust.App, ingest: Ingest, counters: Counters) -> None:
        self.app = app
        self.ingest = ingest
        self.counters = counters

    def describe(self) -> list[Metric]:
        return []  # families depend on the data; describing none keeps registration cheap

    def _active(self, topic: str) -> set[int]:
        assignor = self.app.assignor
        return {tp.partition for tp in assignor.assigned_actives() if tp.topic == topic}

    def collect(self) -> Iterator[Metric]:
        accepted, rejected, watermark = self.ingest.totals(self._active(POSTS))
        if watermark is None:
            watermark = self.counters.delta_watermark

        events = CounterMetricFamily(
            "spread_events", "Events read from posts, by outcome.", labels=["outcome"]
        )
        events.add_metric(["accepted"], accepted)
        events.add_metric(["rejected"], sum(rejected.values()))
        yield events
        reasons = CounterMetricFamily(
            "spread_events_rejected",
            "Events rejected and dead-lettered to posts-rejected, by reason.",
            labels=["reason"],
        )
        for reason, n in sorted(rejected.items()):
            reasons.add_metric([reason], n)
        yield reasons
        if watermark is not None:
            yield GaugeMetricFamily(
                "spread_watermark_timestamp_seconds",
                "Newest event time seen by this worker (epoch seconds).",
                value=watermark,
            )
        yield CounterMetricFamily(
            "spread_delta_overlaps",
            "Delta ranges that straddled an applied offset (must stay 0; see pipeline.deltas).",
            value=self.counters.overlaps,
        )
        yield from self._hashtags(watermark)

    def _hashtags(self, watermark: float | None) -> Iterator[Metric]:
        counters = self.counters
        owned = self._active(DELTAS)
        total = CounterMetricFamily(
            "hashtag_posts", "Accepted posts carrying the hashtag.", labels=["hashtag"]
        )
        region_total = CounterMetricFamily(
            "hashtag_region_posts",
            "Accepted posts carrying the hashtag, by region (ISO 3166-1 alpha-2, ZZ unknown).",
            labels=["hashtag", "region"],
        )
        rate = GaugeMetricFamily(
            "hashtag_posts_per_minute",
            "Posts per minute over the last 1m/15m/1h of event time, ending at the watermark.",
            labels=["hashtag", "window"],
        )
        reached = GaugeMetricFamily(
            "hashtag_regions_reached", "Regions with at least one post.", labels=["hashtag"]
        )
        first_seen = GaugeMetricFamily(
            "hashtag_region_first_seen_timestamp_seconds",
            "Event time of the hashtag's first post in the region.",
            labels=["hashtag", "region"],
        )
        keys = counters.recent_keys(watermark) if watermark is not None else None
        for tag, value in list(plain_dict(counters.totals).items()):
            if not value or counters.partition_of(tag) not in owned:
                continue
            total.add_metric([tag], value["n"])
            for region, n in value["r"].items():
                region_total.add_metric([tag, region], n)
            reached.add_metric([tag], len(value["r"]))
            for region, ts in value["f"].items():
                first_seen.add_metric([tag, region], ts)
            if keys is not None:
                for label, per_minute in window_rates(counters.recent_counts(tag, keys)).items():
                    rate.add_metric([tag, label], per_minute)
        yield total
        yield region_total
        yield rate
        yield reached
        yield first_seen

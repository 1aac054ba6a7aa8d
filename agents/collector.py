"""Prometheus exposition: totals read from the tables at scrape time, signals by a timer.

A custom collector (prometheus_client's pattern): nothing is updated per event. A scrape reads
the totals of the partitions this worker owns right now, so after a rebalance a worker stops
exporting the hashtags it gave away and ``sum by (hashtag)`` over all workers is exact. The
rates, trend, R_t and growth of the exported hashtags, and the choice of which to export, come
from a Faust timer (:class:`HashtagCollector`), so a scrape's cost does not grow with the
hashtags in the tables. Both run on the worker's event loop (a Faust web page, a Faust timer),
so they see the tables between two stream steps, never halfway through one.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from agents.changelog import plain_dict
from agents.counters import children_of, counts_of, owned_partitions, regions_of, restoring
from agents.ranking import INTERVAL, Ranking
from pipeline.settings import POSTS
from pipeline.virality import movements, users
from pipeline.virality.generation import mean_lag
from pipeline.virality.rates import (
    HISTORY,
    doubling_time_seconds,
    growth_ratio,
    region_rates,
    window_rates,
)
from pipeline.virality.reproduction import Estimate, cori, history_minutes
from pipeline.virality.trend import trend_score

if TYPE_CHECKING:
    import faust

    from agents.counters import Counters
    from agents.health import BrokerProbe
    from agents.ingest import Ingest


def _pipeline_families() -> dict[str, Metric]:
    return {
        "events": CounterMetricFamily(
            "spread_events", "Events read from posts, by outcome.", labels=["outcome"]
        ),
        "rejected": CounterMetricFamily(
            "spread_events_rejected",
            "Events rejected and dead-lettered to posts-rejected, by reason.",
            labels=["reason"],
        ),
        "late": CounterMetricFamily(
            "spread_events_late",
            "Accepted events older than their partition's watermark minus --grace-seconds: in "
            "the totals, not in the windows.",
        ),
        "watermark": GaugeMetricFamily(
            "spread_watermark_timestamp_seconds",
            "Newest event time seen by this worker (epoch seconds).",
        ),
        "applied": GaugeMetricFamily(
            "spread_hashtag_posts_sum",
            "Sum of hashtag_posts_total over the hashtags this worker exports: stage 2's "
            "progress, cheap to poll with /metrics?name[]=spread_hashtag_posts_sum.",
        ),
        "broker_up": GaugeMetricFamily(
            "spread_broker_up", "1 while this worker can reach its broker, else 0."
        ),
        "outages": CounterMetricFamily(
            "spread_broker_outages", "Times this worker lost its broker (see agents.health)."
        ),
        "helper": GaugeMetricFamily(
            "spread_ingest_helper_up",
            "1 while stage 1 runs in helper processes (--ingest-process), 0 in the worker's "
            "own process (turned off, or a helper died).",
        ),
        "gi_mean": GaugeMetricFamily(
            "spread_generation_interval_mean_seconds",
            "Mean of the generation interval R_t uses: learned from parent links once "
            "spread_generation_interval_samples reaches 200, else configured or the default.",
        ),
        "gi_samples": CounterMetricFamily(
            "spread_generation_interval_samples",
            "Parent -> child lags this worker learned the generation interval from.",
        ),
        "buckets": GaugeMetricFamily(
            "spread_minute_buckets",
            "(hashtag, minute) buckets held: what memory grows with besides the hashtags.",
        ),
        "expired": CounterMetricFamily(
            "spread_minute_buckets_expired",
            "Buckets deleted once older than the newest event time minus the retention.",
        ),
        "restored": CounterMetricFamily(
            "spread_changelog_records_restored",
            "Changelog records this worker read in bulk to restore the partitions it was "
            "assigned, before Faust's recovery went on from there.",
        ),
        "replayed": CounterMetricFamily(
            "spread_changelog_records_replayed",
            "Changelog records Faust's own recovery applied one at a time: written after a "
            "bulk read, or after the offset a kept partition's store reported.",
        ),
        "overlaps": CounterMetricFamily(
            "spread_delta_overlaps",
            "Delta entries found partly applied already (must stay 0; see pipeline.deltas).",
        ),
        "tracked": GaugeMetricFamily(
            "spread_hashtags_tracked", "Hashtags this worker counts (its partitions)."
        ),
        "gaps": CounterMetricFamily(
            "spread_offset_gaps",
            "Records that arrived before the record preceding them in their partition was "
            "read: the consumer skipped records (0 on the deltas topic; on posts, control "
            "records of transactional producers and retention count too).",
            labels=["topic"],
        ),
    }


def _signal_families(prefix: str, label: str, what: str) -> dict[str, Metric]:
    """The families a hashtag and a movement share: ``{prefix}_*`` labelled by ``label``."""
    return {
        "total": CounterMetricFamily(
            f"{prefix}_posts", f"Accepted posts carrying the {what}.", labels=[label]
        ),
        "region_total": CounterMetricFamily(
            f"{prefix}_region_posts",
            f"Accepted posts carrying the {what}, by region (ISO 3166-1 alpha-2, ZZ unknown).",
            labels=[label, "region"],
        ),
        "rate": GaugeMetricFamily(
            f"{prefix}_posts_per_minute",
            "Posts per minute over the last 1m/15m/1h of event time, ending at the watermark.",
            labels=[label, "window"],
        ),
        "region_rate": GaugeMetricFamily(
            f"{prefix}_region_posts_per_minute",
            "Posts per minute in the region over the last 15m/1h of event time (regions "
            "with posts in the window only).",
            labels=[label, "region", "window"],
        ),
        "reached": GaugeMetricFamily(
            f"{prefix}_regions_reached", "Regions with at least one post.", labels=[label]
        ),
        "first_seen": GaugeMetricFamily(
            f"{prefix}_region_first_seen_timestamp_seconds",
            f"Event time of the {what}'s first post in the region.",
            labels=[label, "region"],
        ),
        "growth": GaugeMetricFamily(
            f"{prefix}_growth_ratio",
            "Posts in the last hour / posts in the hour before (event time; absent if none).",
            labels=[label],
        ),
        "trend": GaugeMetricFamily(
            f"{prefix}_trend_score",
            "Last 15 minutes' rate against its own EWMA baseline of the 105 minutes before, "
            "in standard errors (event time; see pipeline.virality.trend).",
            labels=[label],
        ),
        "rt": GaugeMetricFamily(
            f"{prefix}_reproduction_number",
            "R_t: children per post over the last hour of event time (Cori et al. 2013, "
            "posts without a parent as imported cases; absent with too little data).",
            labels=[label],
        ),
        "rt_lower": GaugeMetricFamily(
            f"{prefix}_reproduction_number_lower",
            "2.5 % quantile of R_t's posterior (95 % credible band).",
            labels=[label],
        ),
        "rt_upper": GaugeMetricFamily(
            f"{prefix}_reproduction_number_upper",
            "97.5 % quantile of R_t's posterior (95 % credible band).",
            labels=[label],
        ),
        "users": GaugeMetricFamily(
            f"{prefix}_unique_users",
            "Distinct users who posted it (exact up to 64, then HyperLogLog, ~0.8 % error).",
            labels=[label],
        ),
    }


def _hashtag_families() -> dict[str, Metric]:
    return {
        **_signal_families("hashtag", "hashtag", "hashtag"),
        "doubling": GaugeMetricFamily(
            "hashtag_doubling_time_seconds",
            "Doubling time at the hourly growth ratio (+Inf when not growing; absent if none).",
            labels=["hashtag"],
        ),
        "exported": GaugeMetricFamily(
            "spread_hashtags_exported",
            "Hashtags with series here: the top --max-hashtags by trend score, "
            "the movements' tags and --always-export.",
        ),
        "computed_at": GaugeMetricFamily(
            "spread_signals_timestamp_seconds",
            "Wall time a timer last chose the exported hashtags and computed their rates, "
            "trend, R_t and growth (every 5 s when anything changed; totals are read at "
            "scrape time).",
        ),
        "ranking_exact": GaugeMetricFamily(
            "spread_ranking_exact",
            "1 if the last ranking scored every hashtag that could enter the top "
            "--max-hashtags, 0 if it stopped at its budget in a long tail of near-equal tags.",
        ),
    }


def _movement_families() -> dict[str, Metric]:
    return {
        **_signal_families("movement", "movement", "movement (any of its hashtags, once)"),
        "members": GaugeMetricFamily(
            "movement_hashtag_info",
            "1 for each hashtag of each movement (--movement): joins hashtag_* to movements.",
            labels=["movement", "hashtag"],
        ),
    }


class _Collector:
    def __init__(
        self, app: faust.App, ingest: Ingest, counters: Counters, interval: Sequence[float] = ()
    ) -> None:
        self.app = app
        self.ingest = ingest
        self.counters = counters
        self.configured = list(interval)

    def weights(self) -> list[float]:
        """The generation interval R_t uses: configured, else learned by stage 1."""
        return self.configured or self.ingest.interval.weights()

    def watermark(self) -> float | None:
        watermark = self.ingest.totals(owned_partitions(self.app, POSTS))[2]
        return self.counters.delta_watermark if watermark is None else watermark


class PipelineCollector(_Collector):
    """``spread_*``: cheap to poll (``/metrics?name[]=...``): one pass over the owned
    hashtags' totals at most, no exposition of per-hashtag series."""

    def __init__(
        self,
        app: faust.App,
        ingest: Ingest,
        counters: Counters,
        probe: BrokerProbe,
        interval: Sequence[float] = (),
    ) -> None:
        super().__init__(app, ingest, counters, interval)
        self.probe = probe

    def describe(self) -> list[Metric]:
        # Sample-less families tell the registry which names this collector serves, so a
        # restricted scrape of spread_* never walks the hashtag tables.
        return list(_pipeline_families().values())

    def collect(self) -> Iterator[Metric]:
        posts = owned_partitions(self.app, POSTS)
        accepted, rejected, watermark, late = self.ingest.totals(posts)
        if watermark is None:
            watermark = self.counters.delta_watermark
        fam = _pipeline_families()
        fam["events"].add_metric(["accepted"], accepted)
        fam["events"].add_metric(["rejected"], sum(rejected.values()))
        yield fam["events"]
        for reason, n in sorted(rejected.items()):
            fam["rejected"].add_metric([reason], n)
        yield fam["rejected"]
        fam["late"].add_metric([], late)
        yield fam["late"]
        if watermark is not None:
            fam["watermark"].add_metric([], watermark)
            yield fam["watermark"]
        tracked, applied = self.counters.owned_stats(
            owned_partitions(self.app, self.counters.topic)
        )
        fam["applied"].add_metric([], applied)
        yield fam["applied"]
        fam["tracked"].add_metric([], tracked)
        yield fam["tracked"]
        fam["broker_up"].add_metric([], 1.0 if self.probe.up else 0.0)
        yield fam["broker_up"]
        fam["outages"].add_metric([], self.probe.outages)
        yield fam["outages"]
        fam["helper"].add_metric([], 0.0 if self.ingest.helpers is None else 1.0)
        yield fam["helper"]
        fam["overlaps"].add_metric([], self.counters.overlaps)
        yield fam["overlaps"]
        fam["gaps"].add_metric([POSTS], self.ingest.gaps)
        fam["gaps"].add_metric([self.counters.topic], self.counters.gaps)
        yield fam["gaps"]
        fam["buckets"].add_metric([], self.counters.buckets_held)
        yield fam["buckets"]
        fam["expired"].add_metric([], self.counters.buckets_expired)
        yield fam["expired"]
        fam["restored"].add_metric([], self.counters.records_restored())
        yield fam["restored"]
        fam["replayed"].add_metric([], self.counters.records_replayed())
        yield fam["replayed"]
        fam["gi_mean"].add_metric([], 60 * mean_lag(self.weights()))
        yield fam["gi_mean"]
        fam["gi_samples"].add_metric([], self.ingest.interval.samples)
        yield fam["gi_samples"]


class HashtagCollector(_Collector):
    """``hashtag_*`` and ``movement_*`` for the hashtags :class:`agents.ranking.Ranking` chose
    (every owned hashtag while there are at most ``max_hashtags``) plus the always-export list,
    and for every movement this worker owns.

    A Faust timer computes the signals (rates, growth, trend, R_t, region rates) every
    ``INTERVAL`` seconds, when anything was applied or reassigned since the last time, right
    after choosing the tags to export; a scrape reads the current totals (posts, regions,
    first-seen times, unique users) from the tables and adds the timer's signals. A scrape so
    costs the same with a thousand or a million hashtags in the tables, and its totals are
    never stale. A tag without signals yet (new since the last round) gets them on the spot.
    """

    def __init__(
        self,
        app: faust.App,
        ingest: Ingest,
        counters: Counters,
        max_hashtags: int,
        always_export: Collection[str],
        interval: Sequence[float] = (),
        families: Sequence[tuple[str, Sequence[str]]] = (),
        virality: bool = True,
    ) -> None:
        super().__init__(app, ingest, counters, interval)
        self.max_hashtags = max_hashtags
        self.always_export = tuple(dict.fromkeys(always_export))
        self.families = families
        self.virality = virality
        self.ranking = Ranking(counters, max_hashtags, virality)
        self.signals: dict[str, Signals] = {}  # by hashtag, and by movement key
        self.computed_at: float | None = None  # wall time the signals were last found current
        self._state: tuple[object, ...] | None = None

        @app.timer(INTERVAL, name="spread-signals")
        async def compute_signals() -> None:
            self.refresh()

    def describe(self) -> list[Metric]:
        return [*_hashtag_families().values(), *_movement_families().values()]

    def refresh(self) -> None:
        """Choose the exported hashtags and compute their signals, unless nothing was applied
        or reassigned since the last time, or the tables are still being restored (the round
        after the restore computes them; a scrape meanwhile exports totals)."""
        if restoring(self.app):
            return
        counters = self.counters
        owned = owned_partitions(self.app, self.counters.topic)
        watermark = self.watermark()
        tracked, _ = counters.owned_stats(owned)
        state = (counters.batches_applied, owned, watermark, tracked)
        if state != self._state:
            ranked = True
            if self._capped(tracked) and watermark is not None:
                # Not due: the previous choice is kept, and the next round tries again.
                ranked = self.ranking.due()
                if ranked:
                    self.ranking.refresh(owned, watermark)
            else:
                self.ranking.clear()
            exported, _ = self.exported(owned, rank=False)
            exported.update(self._movements(owned))
            self.signals = self._compute(exported, watermark)
            self._state = state if ranked else None
        self.computed_at = time.time()

    def exported(self, owned: frozenset[int], rank: bool = True) -> tuple[dict[str, dict], int]:
        """The exported hashtags' totals and how many hashtags this worker owns; ranks first
        (``rank``) if the choice is needed and was never made."""
        counters = self.counters
        totals = plain_dict(counters.totals)
        partition_of = counters.partition_of
        tracked, _ = counters.owned_stats(owned)
        if not self._capped(tracked):
            return {
                tag: value
                for tag, value in list(totals.items())
                if value and not movements.is_key(tag) and partition_of(tag) in owned
            }, tracked
        ranking = self.ranking
        if ranking.chosen is None and rank:
            self._state = None
            self.refresh()
        out = {}
        for tag in (*(ranking.chosen or ()), *self.always_export):
            value = totals.get(tag)
            if value and partition_of(tag) in owned:
                out[tag] = value
        return out, tracked

    def _capped(self, tracked: int) -> bool:
        """Whether the cap leaves hashtags out, so that a ranking chooses the exported ones."""
        return 0 < self.max_hashtags < tracked

    def _movements(self, owned: frozenset[int]) -> dict[str, dict]:
        """Movement key -> total, for the movements on this worker's partitions."""
        counters = self.counters
        totals = plain_dict(counters.totals)
        out = {}
        for name, _ in self.families:
            key = movements.key(name)
            value = totals.get(key)
            if value and counters.partition_of(key) in owned:
                out[key] = value
        return out

    def _compute(self, tags: Collection[str], watermark: float | None) -> dict[str, Signals]:
        if watermark is None:
            return {tag: Signals(None, self.virality) for tag in tags}
        counters = self.counters
        keys = counters.recent_keys(watermark)
        weights = self.weights()
        # R_t reads further back than the rates (the window and the interval's support);
        # these keys start with the same newest buckets, so one read serves both.
        detail_keys = counters.recent_keys(watermark, max(HISTORY, history_minutes(weights)))
        out = {}
        for tag in tags:
            buckets = counters.recent_buckets(tag, detail_keys)
            signals = Signals(counts_of(buckets[: len(keys)]), self.virality)
            if self.virality:
                signals.rt = cori(children_of(buckets), counts_of(buckets), weights)
            signals.where = region_rates(regions_of(buckets))
            out[tag] = signals
        return out

    def collect(self) -> Iterator[Metric]:
        owned = owned_partitions(self.app, self.counters.topic)
        fam = _hashtag_families()
        moves = _movement_families()
        exported, _ = self.exported(owned)
        moving = self._movements(owned)
        signals = self.signals
        missing = [tag for tag in (*exported, *moving) if tag not in signals]
        if missing:
            if restoring(self.app):
                # Totals only until the next round: the store is still filling, and computing
                # thousands of tags per scrape would slow the recovery itself.
                computed = {tag: Signals(None, self.virality) for tag in missing}
            else:
                computed = self._compute(missing, self.watermark())
            signals = {**signals, **computed}
        for tag in sorted(exported):
            signals[tag].add_to(fam, tag, exported[tag])
        fam["exported"].add_metric([], len(exported))
        if self.computed_at is not None:
            fam["computed_at"].add_metric([], self.computed_at)
        fam["ranking_exact"].add_metric([], 1.0 if self.ranking.exact else 0.0)
        for name, tags in self.families:
            key = movements.key(name)
            if key in moving:
                signals[key].add_to(moves, name, moving[key])
            for tag in tags:
                moves["members"].add_metric([name, tag], 1)
        yield from fam.values()
        yield from moves.values()


class Signals:
    """One hashtag's (or movement's) signals from its newest buckets, as the timer computed
    them; :meth:`add_to` adds them to the current total read at scrape time."""

    __slots__ = ("counts", "growth", "rates", "rt", "trend", "virality", "where")

    def __init__(self, counts: list[int] | None, virality: bool = True) -> None:
        self.virality = virality
        self.counts = counts if virality else None  # no trend without the signals
        self.rates = window_rates(counts) if counts is not None else {}
        self.growth = growth_ratio(counts) if counts is not None else None
        self.trend = trend_score(counts) if self.counts is not None else 0.0
        self.rt: Estimate | None = None
        self.where: dict[str, dict[str, float]] = {}  # window -> region -> posts per minute

    def add_to(self, fam: dict[str, Metric], label: str, value: dict) -> None:
        fam["total"].add_metric([label], value["n"])
        for region, n in value["r"].items():
            fam["region_total"].add_metric([label, region], n)
        fam["reached"].add_metric([label], len(value["r"]))
        if self.virality:
            fam["users"].add_metric([label], users.estimate(value.get("u")))
        for region, ts in value["f"].items():
            fam["first_seen"].add_metric([label, region], ts)
        for window, per_minute in self.rates.items():
            fam["rate"].add_metric([label, window], per_minute)
        for window, by_region in self.where.items():
            for region, per_minute in sorted(by_region.items()):
                fam["region_rate"].add_metric([label, region, window], per_minute)
        if self.growth is not None:
            fam["growth"].add_metric([label], self.growth)
            if "doubling" in fam:
                fam["doubling"].add_metric([label], doubling_time_seconds(self.growth))
        if self.counts is not None:
            fam["trend"].add_metric([label], self.trend)
        if self.rt is not None:
            fam["rt"].add_metric([label], self.rt.mean)
            fam["rt_lower"].add_metric([label], self.rt.lower)
            fam["rt_upper"].add_metric([label], self.rt.upper)

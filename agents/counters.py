"""Stage 2: ``hashtag-deltas`` → per-hashtag counters in changelog-backed tables.

Tables (both keyed by the normalised hashtag, on the partitions of ``hashtag-deltas``, so each
worker owns a disjoint set of hashtags and exports only those):

``hashtag-totals``
    ``{"n": posts, "r": {region: posts}, "f": {region: first_ts}, "m": marks, "u": users}``
    (``u``: its users, a sorted list up to 64, then a HyperLogLog sketch; see
    :mod:`pipeline.virality.users`)
``hashtag-minutes`` (tumbling 60 s windows, event time, closed-open ``[m, m + 60)``)
    ``[posts, marks, children, {region: posts}]`` per (hashtag, minute); ``children`` are the
    posts that name a parent (the reproduction number's secondary cases)

``marks`` is the highest source offset applied per ``posts`` partition; a delta at or below its
mark is a redelivery and is skipped (:mod:`pipeline.deltas`). Delta records are taken in
batches and applied with one table write per key per batch: Faust costs hundreds of
microseconds per table write, so writes are what must not grow with events.

Windows do not expire by wall clock: Faust's expiry compares window ends with ``time.time()``,
which would delete every window of a historical replay at once. They expire in event time
instead: every ``SWEEP_EVERY`` of event time, the buckets of the owned partitions older than
the newest delta's time minus ``retention`` (the grace period plus the longest span a reader
needs, R_t's) are deleted, with tombstones in the changelog. Memory then follows the hashtags
alive in the last hours, not the events ever counted.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from agents.batches import Batches
from agents.changelog import plain_dict
from agents.store import register as bulk_store
from pipeline import deltas as wire
from pipeline.settings import DEFAULT_GRACE_SECONDS
from pipeline.virality import movements, users
from pipeline.virality.activity import RecentPosts
from pipeline.virality.generation import MAX_LAG_MINUTES
from pipeline.virality.rates import HISTORY, window_minutes
from pipeline.virality.reproduction import SKIP_NEWEST, WINDOW

if TYPE_CHECKING:
    import faust

    from agents.changelog import ChangelogWriter

log = logging.getLogger(__name__)

TOTALS_TABLE = "hashtag-totals"
MINUTES_TABLE = "hashtag-minutes"
MINUTE = 60.0
# Records of hashtag-deltas taken at most at once: a fetch, or several when they waited
# (agents.batches). With Faust's delivery, taken within BATCH_SECONDS: every hot hashtag is
# written once per batch, so a longer batch means fewer writes; it is also what a change
# waits, at most, before /metrics shows it.
BATCH_RECORDS = 256
BATCH_SECONDS = 0.5
# Fetches of hashtag-deltas queued at most while a batch is applied: enough for the next
# batch to reach BATCH_RECORDS under load (a fetch holds a few records per partition).
FETCHES_QUEUED = 32
SWEEP_EVERY = 600.0  # event-time seconds between two sweeps of expired buckets
# The longest span of buckets a reader needs: R_t's newest bucket, window and the longest
# generation interval (rates and growth need 2 h, less).
READ_SPAN_SECONDS = (SKIP_NEWEST + WINDOW + MAX_LAG_MINUTES) * 60


def owned_partitions(app: faust.App, topic: str) -> frozenset[int]:
    """The partitions of ``topic`` this worker owns right now."""
    return frozenset(tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic)


def restoring(app: faust.App) -> bool:
    """Whether the tables may still be filling from the changelogs: during a rebalance (the
    bulk restore of :mod:`agents.store` runs inside it) and Faust's recovery after it."""
    return bool(app.in_recovery or getattr(app, "rebalancing", False))


class Counters:
    def __init__(
        self,
        app: faust.App,
        deltas: faust.TopicT,
        partitions: int,
        writer: ChangelogWriter,
        partition_cache: dict[str, int] | None = None,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
    ) -> None:
        self.app = app
        self.topic = deltas.get_topic_name()
        self.partitions = partitions
        self.retention = grace_seconds + READ_SPAN_SECONDS
        # minute start -> tags with a bucket there: which buckets a sweep deletes. Built from
        # the table on the first sweep (after a recovery the store holds buckets unindexed).
        self._index: dict[int, set[str]] | None = None
        self._next_sweep: float | None = None
        self.buckets_expired = 0
        store = bulk_store()  # restored in bulk from the changelogs (agents/store.py)
        self.totals = app.Table(TOTALS_TABLE, default=None, partitions=partitions, store=store)
        self.minutes = app.Table(
            MINUTES_TABLE, default=None, partitions=partitions, store=store
        ).tumbling(MINUTE, expires=None)
        # Newest event time in the deltas this worker applied; the watermark of last resort
        # when it owns no partition of ``posts``.
        self.delta_watermark: float | None = None
        # Entries found partly applied: impossible by construction (pipeline.deltas); counted
        # and exported so that a broken assumption shows instead of hiding.
        self.overlaps = 0
        self.unions = users.Unions()
        # tag -> hashtag-deltas partition; shared with stage 1, which computes the same.
        self._partition_of: dict[str, int] = {} if partition_cache is None else partition_cache
        # Per hashtag-deltas partition: hashtags and their posts (movements aside), kept as
        # batches are applied and recounted from the store whenever something else may have
        # changed it (see owned_stats), so a scrape never walks a million totals.
        self._tags_in: dict[int, int] = {}
        self._posts_in: dict[int, int] = {}
        self._stats_state: tuple[Any, ...] | None = None
        self._stats_len = 0  # len(totals store) the stats account for
        # Posts per hashtag in the newest minutes: what the exporter ranks from.
        self.recent = RecentPosts()
        self.batches_applied = 0

        self.gaps = 0
        # hashtag-deltas partition -> offset of the last record read, in this generation: a
        # record that skips ahead of it means the consumer lost records (must not happen).
        self._read: dict[int, int] = {}
        self._read_generation: Any = None

        # Installed by the worker (agents.cli): Faust's test contexts put events in the stream.
        self.batches = Batches(app, self.topic, BATCH_RECORDS, FETCHES_QUEUED)

        @app.agent(deltas, name="counters")
        async def counters(stream: faust.StreamT) -> None:
            async for batch in self.batches.take(stream, BATCH_RECORDS, BATCH_SECONDS):
                self.check_offsets([(m.partition, m.offset) for m in batch])
                totals, buckets = self.apply_batch(
                    [(m.partition, wire.decode(m.value)) for m in batch]
                )
                await writer.write((self.totals, totals), (self.minutes.table, buckets))
                expired = self.expired()
                if expired:
                    await writer.write((self.minutes.table, expired))

        self.agent = counters

    def records_restored(self) -> int:
        """Changelog records the tables' stores read in bulk (:mod:`agents.store`)."""
        return self._stores_sum("bulk_records")

    def records_replayed(self) -> int:
        """Changelog records Faust's own recovery applied one at a time (:mod:`agents.store`)."""
        return self._stores_sum("replayed_records")

    def _stores_sum(self, counter: str) -> int:
        return sum(getattr(t.data, counter, 0) for t in (self.totals, self.minutes.table))

    def check_offsets(self, read: list[tuple[int, int]]) -> None:
        """Count (and log) records of ``hashtag-deltas`` that skip ahead of the last one read
        from their partition. Going back is a redelivery, which :meth:`apply_batch` skips;
        going forward past a record loses it. Reset when the group's generation changes."""
        generation = getattr(self.app, "consumer_generation_id", None)
        if generation != self._read_generation:
            self._read_generation = generation
            self._read.clear()
        last = self._read
        for partition, offset in read:
            before = last.get(partition)
            if before is not None and offset > before + 1:
                self.gaps += 1
                log.warning(
                    "%s/%s: read offset %s after %s (records skipped?)",
                    self.topic,
                    partition,
                    offset,
                    before,
                )
            last[partition] = offset

    def apply_batch(
        self, batch: list[tuple[int, list[wire.Entry]]]
    ) -> tuple[list[tuple[int, str, Any]], list[tuple[int, Any, Any]]]:
        """Fold delta records [(partition, entries)] into one new value per key.

        Returns the (partition, key, value) writes for the totals and the minute buckets.
        Faust acknowledges the batch only after the agent wrote them, so no offset commit can
        cover a delta whose effect is not in the changelog's producer queue.
        """
        totals = plain_dict(self.totals)
        buckets = plain_dict(self.minutes.table)
        ranges = self.minutes.table.window.ranges
        unions = self.unions
        recent = self.recent
        tags_in, posts_in = self._tags_in, self._posts_in
        new_totals: dict[str, tuple[int, dict[str, Any]]] = {}
        new_buckets: dict[tuple[str, tuple[float, float]], tuple[int, list[Any]]] = {}
        wm_seen = self.delta_watermark
        # minute -> its window range: Faust's ``ranges`` builds a list per call.
        range_of: dict[int, Any] = {}
        index = self._index
        for partition, entries in batch:
            for entry_ranges, wm, tags in entries:
                ranges_ = wire.marked(entry_ranges)
                advance = wire.advanced(ranges_)
                if wm is not None and (wm_seen is None or wm > wm_seen):
                    wm_seen = wm
                for tag, delta in tags.items():
                    posts, by_region, by_minute, first_seen = delta[:4]
                    children = dict(delta[4]) if len(delta) > 4 and delta[4] else None
                    batch_users = delta[5] if len(delta) > 5 else None
                    where: dict[int, dict[str, int]] = {}
                    for m, region, n in delta[6] if len(delta) > 6 else ():
                        where.setdefault(m, {})[region] = n
                    pending = new_totals.get(tag)
                    is_new = False
                    if pending is None:
                        stored = totals.get(tag)
                        is_new = not stored
                        value = wire.copy_total(stored) if stored else wire.new_total()
                    else:
                        value = pending[1]
                    counted = not movements.is_key(tag)
                    verdict = wire.check(value["m"], ranges_)
                    if verdict == wire.APPLY:
                        wire.merge_total(value, ranges_, posts, by_region, first_seen)
                        if is_new:
                            self._stats_len += 1
                        if counted:
                            tags_in[partition] = tags_in.get(partition, 0) + is_new
                            posts_in[partition] = posts_in.get(partition, 0) + posts
                        if batch_users:
                            value["u"] = unions.merge(tag, value.get("u"), batch_users)
                        new_totals[tag] = (partition, value)
                    elif verdict == wire.OVERLAP:
                        self.overlaps += 1
                    # Buckets carry their own marks: a crash may have kept a total's write
                    # and lost a bucket's (or the reverse), so each is checked on its own.
                    for minute, count in by_minute:
                        rng = range_of.get(minute)
                        if rng is None:
                            rng = range_of[minute] = ranges(float(minute))[0]
                        key = (tag, rng)
                        pending_bucket = new_buckets.get(key)
                        if pending_bucket is None:
                            stored_bucket = buckets.get(key)
                            bucket = None if not stored_bucket else wire.new_bucket(stored_bucket)
                        else:
                            bucket = pending_bucket[1]
                        kids = children.get(minute, 0) if children else 0
                        if bucket is None:
                            # The common case on a replay: nothing to check, nothing to copy.
                            # ``where``'s dicts are this batch's own, so one is handed over.
                            bucket = wire.fresh_bucket(advance, count, kids, where.get(minute))
                        elif wire.check(bucket[1], ranges_) == wire.APPLY:
                            wire.merge_bucket(bucket, ranges_, count, kids, where.get(minute))
                        else:
                            continue
                        new_buckets[key] = (partition, bucket)
                        if counted:
                            recent.add(tag, int(minute), count)
                        if index is not None:
                            tags_at = index.get(minute)
                            if tags_at is None:
                                tags_at = index[int(minute)] = set()
                            tags_at.add(tag)
        self.delta_watermark = wm_seen
        self.batches_applied += 1
        return (
            [(p, tag, value) for tag, (p, value) in new_totals.items()],
            [(p, key, bucket) for key, (p, bucket) in new_buckets.items()],
        )

    def expired(self) -> list[tuple[int, Any, None]]:
        """Deletions of the owned buckets older than the retention, once every
        ``SWEEP_EVERY`` of event time (else nothing)."""
        wm = self.delta_watermark
        if wm is None:
            return []
        if self._next_sweep is not None and wm < self._next_sweep:
            return []
        self._next_sweep = wm + SWEEP_EVERY
        table = self.minutes.table
        buckets = plain_dict(table)
        if self._index is None:
            self._index = {}
            for tag, (start, _end) in list(buckets):
                self._index.setdefault(int(start), set()).add(tag)
        cutoff = wm - self.retention
        owned = owned_partitions(self.app, self.topic)
        ranges = table.window.ranges
        out: list[tuple[int, Any, None]] = []
        partition_of = self.partition_of
        for minute in [m for m in self._index if m + MINUTE <= cutoff]:
            rng = ranges(float(minute))[0]  # Faust builds a list per call: once per minute
            for tag in self._index.pop(minute):
                key = (tag, rng)
                partition = partition_of(tag)
                if partition in owned and key in buckets:
                    out.append((partition, key, None))
        self.buckets_expired += len(out)
        return out

    def owned_stats(self, owned: frozenset[int]) -> tuple[int, int]:
        """(hashtags, their posts) on the ``owned`` partitions of ``hashtag-deltas``.

        Kept up to date by :meth:`apply_batch`; recounted from the store (and :attr:`recent`
        rebuilt from the minute buckets) when something else may have written it: a
        rebalance (a new generation, partitions restored from changelogs), a recovery (once,
        after it), or a store whose size is not what the applied batches made it.
        """
        app = self.app
        store = plain_dict(self.totals)
        state = (getattr(app, "consumer_generation_id", None), owned)
        if restoring(app):
            # The store is still filling: a recount per scrape would walk it (and every minute
            # bucket) again and again, slowing the recovery it waits for. The figures stay
            # those of before the recovery until the first call after it recounts.
            self._stats_state = None
        elif state != self._stats_state or len(store) != self._stats_len:
            self._recount(store)
            self._stats_state = state
        tags, posts = self._tags_in, self._posts_in
        return sum(tags.get(p, 0) for p in owned), sum(posts.get(p, 0) for p in owned)

    def _recount(self, store: dict[str, Any]) -> None:
        tags: dict[int, int] = {}
        posts: dict[int, int] = {}
        partition_of = self.partition_of
        for tag, value in store.items():
            if value and not movements.is_key(tag):
                p = partition_of(tag)
                tags[p] = tags.get(p, 0) + 1
                posts[p] = posts.get(p, 0) + value["n"]
        self._tags_in, self._posts_in = tags, posts
        self._stats_len = len(store)
        recent = self.recent
        recent.clear()
        for (tag, (start, _end)), bucket in list(plain_dict(self.minutes.table).items()):
            if bucket and not movements.is_key(tag):
                recent.add(tag, int(start), bucket[0])

    def recent_keys(self, watermark: float, minutes: int = HISTORY) -> list[tuple[float, float]]:
        """Window ranges of the newest ``minutes`` minutes, the watermark's bucket first;
        computed once per timer round, then looked up for every hashtag it reads."""
        ranges = self.minutes.table.window.ranges
        return [ranges(float(m))[0] for m in reversed(window_minutes(watermark, minutes))]

    def recent_counts(self, tag: str, keys: list[tuple[float, float]]) -> list[int]:
        buckets = plain_dict(self.minutes.table)
        out = []
        for rng in keys:
            value = buckets.get((tag, rng))
            out.append(value[0] if value else 0)
        return out

    def recent_buckets(self, tag: str, keys: list[tuple[float, float]]) -> list[Any]:
        """The stored buckets of ``keys`` (None where there is none), for the readers that need
        more than the counts: see :func:`children_of` and :func:`regions_of`."""
        buckets = plain_dict(self.minutes.table)
        return [buckets.get((tag, rng)) for rng in keys]

    def minute_count(self, tag: str, minute: int) -> int:
        table = self.minutes.table
        (rng,) = table.window.ranges(float(minute))
        value = plain_dict(table).get((tag, rng))
        return value[0] if value else 0

    def partition_of(self, tag: str) -> int:
        p = self._partition_of.get(tag)
        if p is None:
            p = self._partition_of[tag] = wire.partition_for(tag, self.partitions)
        return p


# Buckets written before a field existed are shorter: none of it.
def counts_of(buckets: list[Any]) -> list[int]:
    return [b[0] if b else 0 for b in buckets]


def children_of(buckets: list[Any]) -> list[int]:
    return [b[2] if b and len(b) > 2 else 0 for b in buckets]


def regions_of(buckets: list[Any]) -> list[dict[str, int]]:
    return [b[3] if b and len(b) > 3 else {} for b in buckets]

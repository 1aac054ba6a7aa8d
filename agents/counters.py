"""Stage 2: ``hashtag-deltas`` → per-hashtag counters in changelog-backed tables.

Tables (both keyed by the normalised hashtag, on the partitions of ``hashtag-deltas``, so each
worker owns a disjoint set of hashtags and exports only those):

``hashtag-totals``
    ``{"n": posts, "r": {region: posts}, "f": {region: first_ts}, "m": marks, "u": users}``
    (``u``: its users, a sorted list up to 64, then a HyperLogLog sketch; see
    :mod:`pipeline.virality.users`)
``hashtag-hours`` (tumbling 1 h windows, event time, closed-open ``[h, h + 3600)``)
    ``[marks, {minute: [posts, children, {region: posts}]}]`` per (hashtag, hour): the minute
    buckets (closed-open ``[m, m + 60)``, ``m`` the epoch second as a string) of that hour
    that have posts; ``children`` are the posts that name a parent (the reproduction number's
    secondary cases)

``marks`` is the highest source offset applied per ``posts`` partition; a delta at or below its
mark is a redelivery and is skipped (:mod:`pipeline.deltas`). Delta records are taken in
batches and applied with one table write per key per batch: Faust costs hundreds of
microseconds per table write, so writes are what must not grow with events.

Why an hour's buckets share one row (and one changelog record, and one set of marks): a replay
batch spans many minutes of event time (hours, as the source partitions are read at different
paces), and on ``make bench``'s workload (a long tail of hashtags, each seen in a few minutes
of an hour) a record per minute bucket made 2.3 times as many writes and 6.7 times as many
expiry tombstones (the deltas of a worker's run on 2,000,000 events: 1,315,849 bucket writes
against 565,574 row writes), each with its own marks. The price is a larger record for a busy
hashtag (up to 60 minutes rewritten per batch); its total, with its users' sketch, is larger
still.

Rows do not expire by wall clock: Faust's expiry compares window ends with ``time.time()``,
which would delete every window of a historical replay at once. They expire in event time
instead: every ``SWEEP_EVERY`` of event time, the rows of the owned partitions whose whole hour
is older than the newest delta's time minus ``retention`` (the grace period plus the longest
span a reader needs, R_t's) are deleted, with tombstones in the changelog. Memory then follows
the hashtags alive in the last hours, not the events ever counted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from time import monotonic
from typing import TYPE_CHECKING, Any

from agents.batches import Batches
from agents.changelog import plain_dict
from agents.store import register as bulk_store
from agents.turns import YIELD_SECONDS, give_turn
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
HOURS_TABLE = "hashtag-hours"
HOUR = wire.HOUR  # a row's span: the wire groups a delta's minutes by the same hours
# Records of hashtag-deltas taken at most at once: a fetch, or several when they waited
# (agents.batches). With Faust's delivery, taken within BATCH_SECONDS: every hot hashtag is
# written once per batch, so a longer batch means fewer writes; it is also what a change
# waits, at most, before /metrics shows it.
BATCH_RECORDS = 256
BATCH_SECONDS = 0.5
# Fetches of hashtag-deltas queued at most while a batch is applied: enough for the next
# batch to reach BATCH_RECORDS under load (a fetch holds a few records per partition).
FETCHES_QUEUED = 32
# Once a batch's first fetch is in, stage 2 waits (at most this long) for stage 1 to finish
# the batch it has in hand, if any, then takes everything queued meanwhile. Under load
# stage 1 is always busy, so stage 2 applies what a whole stage-1 batch sent at once, not a
# helper's share or a slice at a time: every hashtag's total and hour rows are merged and
# rewritten once for all of it (on `make bench`'s workload, 41,869 -> 30,742 writes of
# totals and 203,371 -> 149,934 of rows per 1,000,000 events). Idle, stage 1 holds no batch
# and nothing waits.
HOLD_SECONDS = 1.0
SWEEP_EVERY = 600.0  # event-time seconds between two sweeps of expired rows
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
        # hour start -> tags with a row there: which rows a sweep deletes. Built from the
        # table on the first sweep (after a recovery the store holds rows unindexed).
        self._index: dict[int, set[str]] | None = None
        self._next_sweep: float | None = None
        self.buckets_expired = 0
        # Minute buckets in the rows of the store, kept as batches are applied and rows
        # expire, recounted with the stats (owned_stats): a scrape never walks the rows.
        self.buckets_held = 0
        store = bulk_store()  # restored in bulk from the changelogs (agents/store.py)
        self.totals = app.Table(TOTALS_TABLE, default=None, partitions=partitions, store=store)
        self.hours = app.Table(
            HOURS_TABLE, default=None, partitions=partitions, store=store
        ).tumbling(HOUR, expires=None)
        # hour start -> its window range, the rows' key: Faust's ``ranges`` builds a list per
        # call.
        self._hour_ranges: dict[int, Any] = {}
        self._hour_info: dict[str, tuple[Any, int]] = {}  # see _hour_key_info
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
                steps = self.applying((m.partition, wire.decode(m.value)) for m in batch)
                resumed = monotonic()
                while (done := next(steps)) is None:
                    if monotonic() - resumed > YIELD_SECONDS:
                        # Between two records: a scrape gets its turn. The stores are
                        # untouched until the write below: it sees the batch whole or not.
                        await give_turn()
                        resumed = monotonic()
                totals, rows = done
                await writer.write((self.totals, totals), (self.hours.table, rows))
                expired = self.expired()
                if expired:
                    await writer.write((self.hours.table, expired))

        self.agent = counters

    def records_restored(self) -> int:
        """Changelog records the tables' stores read in bulk (:mod:`agents.store`)."""
        return self._stores_sum("bulk_records")

    def records_replayed(self) -> int:
        """Changelog records Faust's own recovery applied one at a time (:mod:`agents.store`)."""
        return self._stores_sum("replayed_records")

    def _stores_sum(self, counter: str) -> int:
        return sum(getattr(t.data, counter, 0) for t in (self.totals, self.hours.table))

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
        self, batch: Iterable[tuple[int, list[wire.Entry]]]
    ) -> tuple[list[tuple[int, str, Any]], list[tuple[int, Any, Any]]]:
        """Fold delta records [(partition, entries)] into one new value per key.

        Returns the (partition, key, value) writes for the totals and the hour rows.
        Faust acknowledges the batch only after the agent wrote them, so no offset commit can
        cover a delta whose effect is not in the changelog's producer queue.
        """
        steps = self.applying(batch)
        while (done := next(steps)) is None:
            pass
        return done

    def applying(
        self, batch: Iterable[tuple[int, list[wire.Entry]]]
    ) -> Iterator[tuple[list[tuple[int, str, Any]], list[tuple[int, Any, Any]]] | None]:
        """:meth:`apply_batch` a record at a time: None after each record but the last, then
        the writes. Nothing a scrape reads changes before the writes are returned (the
        stores change when they are written; the counts kept beside them, here, at the end)."""
        totals = plain_dict(self.totals)
        stored_rows = plain_dict(self.hours.table)
        unions = self.unions
        new_totals: dict[str, tuple[int, dict[str, Any]]] = {}
        new_rows: dict[tuple[str, Any], tuple[int, list[Any]]] = {}
        hour_info = self._hour_info
        # minute -> tag -> posts: what RecentPosts gets, once per batch. It ignores minutes
        # older than its span behind the newest minute it was given, so hours wholly before
        # that are not walked minute by minute (most of a replay's batch: it spans hours).
        recent_posts: dict[int, dict[str, int]] = {}
        newest = self.recent.newest
        recent_from = float("-inf") if newest is None else newest - self.recent.span - HOUR
        wm_seen = self.delta_watermark
        index = self._index
        new_buckets = 0
        upgrade = wire.upgrade
        # Counted here, added to the stored counts with the writes (owned_stats recounts
        # from the store when its size is not what they say).
        tags_in: dict[int, int] = {}
        posts_in: dict[int, int] = {}
        new_tags = 0
        first = True
        for partition, entries in batch:
            if not first:
                yield None
            first = False
            for entry_ranges, wm, tags in entries:
                ranges_ = wire.marked(entry_ranges)
                advance = wire.advanced(ranges_)
                if wm is not None and (wm_seen is None or wm > wm_seen):
                    wm_seen = wm
                for tag, delta in tags.items():
                    if type(delta[2]) is not dict:
                        delta = upgrade(delta)
                    posts, by_region, hours, first_seen, batch_users = delta
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
                        new_tags += is_new
                        if counted:
                            tags_in[partition] = tags_in.get(partition, 0) + is_new
                            posts_in[partition] = posts_in.get(partition, 0) + posts
                        if batch_users:
                            value["u"] = unions.merge(tag, value.get("u"), batch_users)
                        new_totals[tag] = (partition, value)
                    elif verdict == wire.OVERLAP:
                        self.overlaps += 1
                    # Rows carry their own marks: a crash may have kept a total's write and
                    # lost a row's (or the reverse), so each is checked on its own.
                    for hour_key, minutes in hours.items():
                        info = hour_info.get(hour_key)
                        if info is None:
                            info = self._hour_key_info(hour_key)
                        rng, hour = info
                        row = self._row_to_apply(
                            (tag, rng),
                            partition,
                            ranges_,
                            advance,
                            stored_rows,
                            new_rows,
                            duplicate=verdict == wire.SKIP,
                        )
                        if row is None:
                            continue  # applied before
                        if index is not None:
                            tags_at = index.get(hour)
                            if tags_at is None:
                                tags_at = index[hour] = set()
                            tags_at.add(tag)
                        held = row[1]
                        if held:
                            new_buckets += wire.add_minutes(held, minutes)
                        else:  # the common case on a replay: the row is new, take the delta's
                            row[1] = minutes
                            new_buckets += len(minutes)
                        if counted and hour > recent_from:
                            for minute, bucket in minutes.items():
                                m = int(minute)
                                at = recent_posts.get(m)
                                if at is None:
                                    at = recent_posts[m] = {}
                                at[tag] = at.get(tag, 0) + bucket[0]
        self.recent.add_many(recent_posts)
        self.buckets_held += new_buckets
        self.delta_watermark = wm_seen
        self.batches_applied += 1
        self._stats_len += new_tags
        for counts, add in ((self._tags_in, tags_in), (self._posts_in, posts_in)):
            for partition, n in add.items():
                counts[partition] = counts.get(partition, 0) + n
        yield (
            [(p, tag, value) for tag, (p, value) in new_totals.items()],
            [(p, key, row) for key, (p, row) in new_rows.items()],
        )

    def _hour_key_info(self, hour_key: str) -> tuple[Any, int]:
        """A wire delta's hour (its start as a string) -> (its row range, its start)."""
        if len(self._hour_info) > 100_000:  # a replay of years: keep it bounded
            self._hour_info.clear()
        hour = int(hour_key)
        info = self._hour_info[hour_key] = (self._hour_range(hour), hour)
        return info

    def _minute_info(self, minute: int) -> tuple[Any, str, int]:
        minute = int(minute)
        hour = minute - minute % HOUR
        return self._hour_range(hour), str(minute), hour

    def _hour_range(self, hour: int) -> Any:
        rng = self._hour_ranges.get(hour)
        if rng is None:
            if len(self._hour_ranges) > 100_000:  # a replay of years: keep it bounded
                self._hour_ranges.clear()
            rng = self._hour_ranges[hour] = self.hours.table.window.ranges(float(hour))[0]
        return rng

    def _row_to_apply(
        self,
        key: tuple[str, Any],
        partition: int,
        ranges_: list[tuple[str, int, int]],
        advance: dict[str, int],
        stored_rows: dict[Any, Any],
        new_rows: dict[tuple[str, Any], tuple[int, list[Any]]],
        duplicate: bool,
    ) -> list[Any] | None:
        """The row ``key`` with the entry of ``ranges_`` recorded in its marks, to add the
        entry's minutes to; None when the row holds it already (a redelivery).

        ``duplicate``: the hashtag's total holds the whole entry already. A row may then find
        it partly applied, and skips it as a whole, rightly. Seen in the scaling test's join:
        after a rebalance, an entry spanning offsets from 0 of every source partition, which
        earlier entries had split between the hashtag's rows (the per-minute buckets before
        rows skipped the same entries the same way, uncounted). Partly applied to a row while
        new to the total would lose posts, and is counted in ``overlaps``."""
        pending = new_rows.get(key)
        if pending is not None:
            row = pending[1]
        else:
            stored = stored_rows.get(key)
            if not stored:
                # The common case on a replay: nothing to check, nothing to copy.
                row = [dict(advance), {}]
                new_rows[key] = (partition, row)
                return row
            row = wire.new_row(stored)
        verdict = wire.check(row[0], ranges_)
        if verdict != wire.APPLY:
            if verdict == wire.OVERLAP:
                self.overlaps += duplicate is False
            return None
        wire.advance_marks(row[0], ranges_)
        new_rows[key] = (partition, row)
        return row

    def expired(self) -> list[tuple[int, Any, None]]:
        """Deletions of the owned rows whose whole hour is older than the retention, once
        every ``SWEEP_EVERY`` of event time (else nothing)."""
        wm = self.delta_watermark
        if wm is None:
            return []
        if self._next_sweep is not None and wm < self._next_sweep:
            return []
        self._next_sweep = wm + SWEEP_EVERY
        rows = plain_dict(self.hours.table)
        if self._index is None:
            self._index = {}
            for tag, (start, _end) in list(rows):
                self._index.setdefault(int(start), set()).add(tag)
        cutoff = wm - self.retention
        owned = owned_partitions(self.app, self.topic)
        out: list[tuple[int, Any, None]] = []
        partition_of = self.partition_of
        expired = 0
        for hour in [h for h in self._index if h + HOUR <= cutoff]:
            rng = self._hour_range(hour)
            for tag in self._index.pop(hour):
                key = (tag, rng)
                partition = partition_of(tag)
                row = rows.get(key) if partition in owned else None
                if row:
                    out.append((partition, key, None))
                    expired += len(row[1])
        self.buckets_expired += expired
        self.buckets_held -= expired
        return out

    def owned_stats(self, owned: frozenset[int]) -> tuple[int, int]:
        """(hashtags, their posts) on the ``owned`` partitions of ``hashtag-deltas``.

        Kept up to date by :meth:`apply_batch`; recounted from the store (and :attr:`recent`
        and :attr:`buckets_held` from the hour rows) when something else may have written it: a
        rebalance (a new generation, partitions restored from changelogs), a recovery (once,
        after it), or a store whose size is not what the applied batches made it.
        """
        app = self.app
        store = plain_dict(self.totals)
        state = (getattr(app, "consumer_generation_id", None), owned)
        if restoring(app):
            # The store is still filling: a recount per scrape would walk it (and every hour
            # row) again and again, slowing the recovery it waits for. The figures stay
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
        recent_posts: dict[int, dict[str, int]] = {}
        held = 0
        for (tag, _rng), row in list(plain_dict(self.hours.table).items()):
            if not row:
                continue
            held += len(row[1])
            if movements.is_key(tag):
                continue
            for minute, bucket in row[1].items():
                recent_posts.setdefault(int(minute), {})[tag] = bucket[0]
        self.recent.clear()
        self.recent.add_many(recent_posts)
        self.buckets_held = held
        # Rows restored since the index was built are not in it: the next sweep rebuilds it.
        self._index = None

    def recent_keys(self, watermark: float, minutes: int = HISTORY) -> list[tuple[Any, str]]:
        """The newest ``minutes`` minutes as (row range, minute) keys, the watermark's minute
        first; computed once per timer round, then looked up for every hashtag it reads."""
        return [self._minute_info(m)[:2] for m in reversed(window_minutes(watermark, minutes))]

    def recent_buckets(self, tag: str, keys: list[tuple[Any, str]]) -> list[Any]:
        """The stored ``[posts, children, {region: posts}]`` buckets of ``keys`` (None where
        there is none); see :func:`counts_of`, :func:`children_of` and :func:`regions_of`."""
        rows = plain_dict(self.hours.table)
        out = []
        last_rng = minutes = None
        for rng, minute in keys:
            if rng is not last_rng:  # keys of one hour share their range
                last_rng = rng
                row = rows.get((tag, rng))
                minutes = row[1] if row else None
            out.append(minutes.get(minute) if minutes else None)
        return out

    def recent_counts(self, tag: str, keys: list[tuple[Any, str]]) -> list[int]:
        return counts_of(self.recent_buckets(tag, keys))

    def minute_count(self, tag: str, minute: int) -> int:
        (bucket,) = self.recent_buckets(tag, [self._minute_info(minute)[:2]])
        return bucket[0] if bucket else 0

    def partition_of(self, tag: str) -> int:
        p = self._partition_of.get(tag)
        if p is None:
            p = self._partition_of[tag] = wire.partition_for(tag, self.partitions)
        return p


def counts_of(buckets: list[Any]) -> list[int]:
    return [b[0] if b else 0 for b in buckets]


def children_of(buckets: list[Any]) -> list[int]:
    return [b[1] if b else 0 for b in buckets]


def regions_of(buckets: list[Any]) -> list[dict[str, int]]:
    return [b[2] if b else {} for b in buckets]

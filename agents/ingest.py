"""Stage 1: records of ``posts`` → validated, normalised, pre-aggregated ``hashtag-deltas``.

Records are taken in batches (``stream.take_events``). Per record (one event or an envelope
of many): decode and judge every line (:func:`pipeline.aggregate.summarise`), pre-aggregate
per source partition, and dead-letter rejected lines to ``posts-rejected`` (value = the line's
exact bytes, headers ``reason`` and ``source``). Per batch: one write per source partition of
the progress table (accepted, rejected by reason, watermark, last offset counted),
changelog-backed and keyed by the source partition; then one delta record per target
partition of ``hashtag-deltas``, with one entry for the batch's new records that names the
offset range it covers in each source partition.

Redelivery (a crash or rebalance before the offset commit): records at or below the progress
row's offset were counted already; their deltas are sent again, one entry per record, and
stage 2 skips what it applied (:mod:`pipeline.deltas` says why ranges are safe). Counts and
dead letters are not repeated. A record delivered twice within one batch is read once: the
batch's entry, sent after the redelivered ones, covers it, and a second copy sent before
that entry would make stage 2 see the entry as partly applied (and skip it whole).

The batch is acknowledged only after this code ran and Faust flushes the producer before it
commits, so a committed offset has all of it at the broker. A record that arrives ahead of
the one after the progress row's offset (a hole) is counted and reported
(``spread_offset_gaps_total``): it must not happen.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Collection, Sequence
from typing import TYPE_CHECKING, Any

from agents.changelog import plain_dict
from pipeline import deltas as wire
from pipeline.aggregate import RecordSummary, summarise
from pipeline.events import ENVELOPE_FORMAT, ENVELOPE_HEADER, REASONS
from pipeline.limits import DEFAULT_LIMITS, Limits
from pipeline.settings import DEFAULT_GRACE_SECONDS
from pipeline.virality.parents import ParentClock

if TYPE_CHECKING:
    import faust

    from agents.app import Topology
    from agents.changelog import ChangelogWriter

log = logging.getLogger(__name__)

PROGRESS_TABLE = "ingest-progress"
# Records taken at a time, then processed in slices of at most SLICE_BYTES: single-event
# records make batches of 256 (each batch costs a progress write the broker acknowledges and
# the deltas sends, so fewer, larger ones are cheaper: +15 % on single-event records), while
# envelopes of 1,000 events (~120 KB) still make slices of ~64 records, ~64k events, between
# which a scrape gets its turn.
BATCH_RECORDS = 256
BATCH_SECONDS = 0.2
SLICE_BYTES = 8 * 1024 * 1024


def empty_progress() -> dict[str, Any]:
    return {"off": -1, "acc": 0, "rej": {}, "wm": None, "late": 0}


class Ingest:
    def __init__(
        self,
        app: faust.App,
        posts: faust.TopicT,
        rejected: faust.TopicT,
        deltas: faust.TopicT,
        topology: Topology,
        writer: ChangelogWriter,
        limits: Limits = DEFAULT_LIMITS,
        partition_cache: dict[str, int] | None = None,
        movements: dict[str, str] | None = None,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
        virality: bool = True,
    ) -> None:
        self.app = app
        self.gaps = 0
        self._gaps_logged: set[int] = set()
        # Lags between parents and children, learned from the records read here (in memory:
        # after a restart it learns again, with the default interval meanwhile).
        self.parents = ParentClock()
        parents = self.parents if virality else None
        self.progress = app.Table(PROGRESS_TABLE, default=None, partitions=topology.posts)
        n_deltas = topology.deltas
        partition_cache = {} if partition_cache is None else partition_cache

        @app.agent(posts, name="ingest")
        async def ingest(stream: faust.StreamT) -> None:
            progress = self.progress
            progress_rows = plain_dict(progress)
            async for batch in sliced(stream.take_events(BATCH_RECORDS, within=BATCH_SECONDS)):
                now = time.time()  # the clock ts_out_of_range is judged against
                entries: list[wire.Entry] = []
                ranges: dict[int, list[int]] = {}  # sp -> [first, last] of the new records
                fresh: dict[str, Any] = {}  # tag deltas of every new record in the batch
                fresh_wm: float | None = None
                rows: dict[int, dict[str, Any]] = {}
                dead: list[tuple[bytes, str, bytes]] = []
                for event in batch:
                    msg = event.message
                    sp, so = msg.partition, msg.offset
                    envelope = _is_envelope(msg.headers)
                    row = rows.get(sp) or progress_rows.get(sp) or empty_progress()
                    span = ranges.get(sp)
                    if so <= row["off"]:
                        if span is not None and so >= span[0]:
                            # Counted in this very batch (a fetch from before a seek and one
                            # from after it can both reach a batch): the batch's entry has it.
                            continue
                        # Counted before this redelivery: deltas again, as an entry of its
                        # own (stage 2 skips what it applied); no counts, no dead letters.
                        s = summarise(
                            event.value, envelope, limits=limits, now=now, movements=movements
                        )
                        entries.append(([(sp, so, so)], s.max_ts, s.tags))
                        continue
                    if so > row["off"] + 1 and row["off"] >= 0:
                        self._gap(msg.topic, sp, row["off"] + 1, so)
                    if span is None:
                        ranges[sp] = [so, so]
                    else:
                        span[1] = so
                    wm = row["wm"]
                    summary = summarise(
                        event.value,
                        envelope,
                        into=fresh,
                        limits=limits,
                        now=now,
                        movements=movements,
                        parents=parents,
                        late_before=None if wm is None else wm - grace_seconds,
                    )
                    if summary.max_ts is not None and (
                        fresh_wm is None or summary.max_ts > fresh_wm
                    ):
                        fresh_wm = summary.max_ts
                    rows[sp] = _advance(row, so, summary)
                    if summary.rejected:
                        source = f"{msg.topic}/{sp}/{so}".encode()
                        dead.extend((source, reason, line) for reason, line in summary.rejected)
                if ranges:
                    entries.append(
                        ([(sp, f, last) for sp, (f, last) in ranges.items()], fresh_wm, fresh)
                    )
                # Progress first, acknowledged by the broker, then deltas: a record above the
                # recorded offset was never sent, so an entry is never partly applied.
                await writer.write((progress, [(sp, sp, row) for sp, row in rows.items()]))
                for source, reason, line in dead:
                    await rejected.send(
                        key=source,
                        value=line,
                        headers=[
                            ("reason", reason.encode()),
                            ("source", source),
                            *([("truncated", b"true")] if reason == "too_large" else []),
                        ],
                    )
                by_target: dict[int, list[wire.Entry]] = {}
                for entry_ranges, wm, tags in entries:
                    split = wire.split_by_partition(tags, n_deltas, partition_cache)
                    for target, part in split.items():
                        by_target.setdefault(target, []).append(
                            wire.entry(entry_ranges, wm, part, with_users=virality)
                        )
                for target, delta_entries in by_target.items():
                    for value in wire.encode_records(delta_entries):
                        await deltas.send(value=value, partition=target)

        self.agent = ingest

    def _gap(self, topic: str, partition: int, expected: int, got: int) -> None:
        # Counted anyway: the progress row moves past the hole, and the metric says so. Logged
        # once per partition: a transactional producer makes one at every commit.
        self.gaps += 1
        if partition not in self._gaps_logged:
            self._gaps_logged.add(partition)
            log.warning(
                "%s/%s: read offset %s before %s (records skipped, or a transaction marker); "
                "further ones are counted in spread_offset_gaps_total",
                topic,
                partition,
                got,
                expected,
            )

    def totals(self, partitions: Collection[int]) -> tuple[int, dict[str, int], float | None, int]:
        """(accepted, rejected by reason, watermark, late) over the given ``posts``
        partitions."""
        accepted = late = 0
        rejected = dict.fromkeys(REASONS, 0)
        wm: float | None = None
        for p in partitions:
            row = plain_dict(self.progress).get(p)
            if not row:
                continue
            accepted += row["acc"]
            late += row.get("late", 0)  # rows written before it: none counted
            for reason, n in row["rej"].items():
                rejected[reason] = rejected.get(reason, 0) + n
            if row["wm"] is not None and (wm is None or row["wm"] > wm):
                wm = row["wm"]
        return accepted, rejected, wm, late


async def sliced(
    batches: AsyncIterator[Sequence[Any]], max_bytes: int | None = None
) -> AsyncIterator[Sequence[Any]]:
    """Each batch of events in order, cut into slices of at most ``max_bytes`` (default
    :data:`SLICE_BYTES`) of record values; a larger record is a slice of its own. Faust
    acknowledges a batch when the next one is asked for, so only once every slice of it was
    processed."""
    limit = SLICE_BYTES if max_bytes is None else max_bytes
    async for batch in batches:
        start = size = 0
        for i, event in enumerate(batch):
            n = len(event.value or b"")
            if size + n > limit and i > start:
                yield batch[start:i]
                start, size = i, 0
            size += n
        if start < len(batch):
            yield batch[start:]


def _is_envelope(headers: Any) -> bool:
    if not headers:
        return False
    items = headers.items() if hasattr(headers, "items") else headers
    return any(k == ENVELOPE_HEADER and v == ENVELOPE_FORMAT for k, v in items)


def _advance(row: dict[str, Any], offset: int, summary: RecordSummary) -> dict[str, Any]:
    rejected = dict(row["rej"])
    for reason, _line in summary.rejected:
        rejected[reason] = rejected.get(reason, 0) + 1
    wm = row["wm"]
    if summary.max_ts is not None and (wm is None or summary.max_ts > wm):
        wm = summary.max_ts
    return {
        "off": offset,
        "acc": row["acc"] + summary.accepted,
        "rej": rejected,
        "wm": wm,
        "late": row.get("late", 0) + summary.late,  # rows written before it: none counted
    }

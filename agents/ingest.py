"""Stage 1: records of ``posts`` → validated, normalised, pre-aggregated ``hashtag-deltas``.

Records are taken in batches (``stream.take_events``) and cut into slices; the work on a
slice that needs no I/O is :class:`pipeline.ingest_slice.SliceProcessor`, run here or in a
helper process (``--ingest-process``). Per record (one event or an envelope
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

import asyncio
import logging
import multiprocessing
import time
from collections.abc import AsyncIterator, Collection, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from agents.changelog import plain_dict
from pipeline.events import ENVELOPE_FORMAT, ENVELOPE_HEADER, REASONS
from pipeline.ingest_slice import (
    Record,
    SliceConfig,
    SliceProcessor,
    SliceResult,
    process_slice,
    start_process,
)
from pipeline.limits import DEFAULT_LIMITS, Limits
from pipeline.settings import DEFAULT_GRACE_SECONDS
from pipeline.virality.generation import GenerationInterval

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
        helper_process: bool = False,
    ) -> None:
        self.app = app
        self.gaps = 0
        self._gaps_logged: set[int] = set()
        config = SliceConfig(
            posts.get_topic_name(), topology.deltas, limits, movements, grace_seconds, virality
        )
        self.processor = SliceProcessor(config, partition_cache)
        self.helper = HelperProcess(config) if helper_process else None
        # The generation interval learned from parent links so far, wherever slices run.
        self.interval = GenerationInterval()
        self.progress = app.Table(PROGRESS_TABLE, default=None, partitions=topology.posts)

        @app.agent(posts, name="ingest")
        async def ingest(stream: faust.StreamT) -> None:
            progress = self.progress
            progress_rows = plain_dict(progress)
            async for batch in sliced(stream.take_events(BATCH_RECORDS, within=BATCH_SECONDS)):
                records: list[Record] = []
                for event in batch:
                    msg = event.message
                    records.append(
                        (msg.partition, msg.offset, event.value, _is_envelope(msg.headers))
                    )
                stored = {sp: progress_rows[sp] for sp, *_ in records if sp in progress_rows}
                result = await self._process(records, stored)
                for sp, expected, got in result.gaps:
                    self._gap(config.topic, sp, expected, got)
                if result.interval is not None:
                    self.interval = result.interval
                # Progress first, acknowledged by the broker, then deltas: a record above the
                # recorded offset was never sent, so an entry is never partly applied.
                await writer.write((progress, [(sp, sp, row) for sp, row in result.rows.items()]))
                for source, reason, line in result.dead:
                    await rejected.send(
                        key=source,
                        value=line,
                        headers=[
                            ("reason", reason.encode()),
                            ("source", source),
                            *([("truncated", b"true")] if reason == "too_large" else []),
                        ],
                    )
                for target, value in result.deltas:
                    await deltas.send(value=value, partition=target)

        self.agent = ingest

    async def _process(
        self, records: list[Record], stored: dict[int, dict[str, Any]]
    ) -> SliceResult:
        now = time.time()  # the clock ts_out_of_range is judged against
        if self.helper is not None:
            try:
                return await self.helper(records, stored, now)
            except BrokenProcessPool:
                # Killed (the OOM killer, most likely): it held nothing exactness needs, so
                # the worker goes on without it, slower, and says so once.
                log.error(
                    "stage 1's helper process died; ingesting in the worker's own process "
                    "from now on"
                )
                self.helper = None
        return self.processor(records, stored, now)

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


class HelperProcess:
    """Stage 1's slices processed in a process of its own, beside the worker's event loop:
    the loop sends a slice's records and gets back rows and encoded deltas, and meanwhile
    runs stage 2 and the writes (the worker's Python is otherwise one core's worth)."""

    def __init__(self, config: SliceConfig) -> None:
        # spawn, not fork: the worker has threads (Faust's consumer), and a forked copy of a
        # lock held by one of them would never be released in the child.
        self._pool = ProcessPoolExecutor(
            1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=start_process,
            initargs=(config,),
        )

    async def __call__(
        self, records: list[Record], stored: dict[int, dict[str, Any]], now: float
    ) -> SliceResult:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, process_slice, records, stored, now)

    def pids(self) -> list[int]:
        """The helper's process id, once a slice started it."""
        return [p.pid for p in (self._pool._processes or {}).values()]

    def close(self) -> None:
        """Stop the helper. A worker need not: concurrent.futures stops it at the
        interpreter's exit, and it exits on its own if the worker dies."""
        self._pool.shutdown(cancel_futures=True)


def _is_envelope(headers: Any) -> bool:
    if not headers:
        return False
    items = headers.items() if hasattr(headers, "items") else headers
    return any(k == ENVELOPE_HEADER and v == ENVELOPE_FORMAT for k, v in items)

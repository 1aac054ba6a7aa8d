"""Stage 1: records of ``posts`` → validated, normalised, pre-aggregated ``hashtag-deltas``.

Records are taken a fetch or more at a time (:mod:`agents.batches`; Faust's
``stream.take_events`` where that is not installed) and cut into slices; the work on a
slice that needs no I/O is :class:`pipeline.ingest_slice.SliceProcessor`, run here or in
helper processes (``--ingest-process``, :class:`Helpers`), each with a share of the batch's
source partitions. Per record (one event or an envelope of many): decode and judge every
line (:func:`pipeline.aggregate.summarise`), pre-aggregate, and dead-letter rejected lines to
``posts-rejected`` (value = the line's exact bytes, headers ``reason`` and ``source``). Per
slice: one write per source partition of the progress table (accepted, rejected by reason,
watermark, last offset counted), changelog-backed and keyed by the source partition; then
one delta record per target partition of ``hashtag-deltas`` (per helper), with one entry
for the slice's new records that names the offset range it covers in each source partition.

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
import contextlib
import itertools
import logging
import multiprocessing
import os
import time
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from agents.batches import Batches
from agents.changelog import plain_dict
from pipeline.events import ENVELOPE_FORMAT, ENVELOPE_HEADER, REASONS
from pipeline.ingest_slice import (
    Record,
    SliceConfig,
    SliceProcessor,
    SliceResult,
    merged,
    process_slice,
    share_sources,
    split_sources,
    start_process,
)
from pipeline.limits import DEFAULT_LIMITS, Limits
from pipeline.settings import DEFAULT_GRACE_SECONDS
from pipeline.virality.generation import GenerationInterval

if TYPE_CHECKING:
    import faust
    from faust.types import Message

    from agents.app import Topology
    from agents.changelog import ChangelogWriter

log = logging.getLogger(__name__)

PROGRESS_TABLE = "ingest-progress"
# Records taken at most at once when several fetches wait (agents.batches): single-event
# records, ~250 bytes each, take a batch of a few MiB. Fetches queued at most: a fetch of
# envelopes is up to 1 MiB per partition.
FETCHED_RECORDS = 16_384
FETCHES_QUEUED = 4
# With Faust's delivery (agents.batches not installed), records taken at a time: each batch
# costs a progress write the broker acknowledges and the deltas sends, so fewer, larger ones
# are cheaper (256 against 64: +15 % on single-event records).
BATCH_RECORDS = 256
BATCH_SECONDS = 0.2
# Batches are processed in slices of at most this many bytes of record values, between which
# a scrape gets its turn: envelopes of 1,000 events (~120 KB) make slices of up to ~270
# records, ~270k events. A slice is one entry per hashtag for stage 2, which bounds the
# worker: it merges every entry into the hashtag's total and hour rows and rewrites them, so
# fewer, larger slices are what makes it cheaper per event. As large as a batch of queued
# fetches of envelopes gets (FETCHES_QUEUED of up to 1 MiB per partition): on `make bench`'s
# workload 8 MiB slices gave 79,000-88,000 events/s, 32 MiB 98,000-109,000 (in alternation).
SLICE_BYTES = 32 * 1024 * 1024
# Batches smaller than this go to one helper whatever their count (Helpers.submit).
SHARE_MIN_BYTES = 1024 * 1024

# Per slice of a batch sent to the helpers: (helper, its share's result) for each helper
# with a share of it.
Pending = list[list[tuple[int, "asyncio.Future[SliceResult]"]]]


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
        helper_processes: int = 0,
    ) -> None:
        self.app = app
        self.gaps = 0
        self._gaps_logged: set[int] = set()
        config = SliceConfig(
            posts.get_topic_name(), topology.deltas, limits, movements, grace_seconds, virality
        )
        self.processor = SliceProcessor(config, partition_cache)
        self.helpers = Helpers(config, helper_processes) if helper_processes > 0 else None
        self._chains = itertools.count()  # one per batch sent to the helpers
        # The generation interval learned from parent links so far, wherever slices run.
        self.interval = GenerationInterval()
        self.progress = app.Table(PROGRESS_TABLE, default=None, partitions=topology.posts)
        self._between_batches = asyncio.Event()  # set while no batch is in hand
        self._between_batches.set()

        async def ingest_batch(batch: list[Message], progress_rows: dict[Any, Any]) -> None:
            progress = self.progress
            async for result in self._results(slices(batch), progress_rows):
                for sp, expected, got in result.gaps:
                    self._gap(config.topic, sp, expected, got)
                if result.interval is not None:
                    self.interval = result.interval
                # Progress first, acknowledged by the broker, then deltas: a record above
                # the recorded offset was never sent, so an entry is never partly applied.
                rows = [(sp, sp, row) for sp, row in result.rows.items()]
                await writer.write((progress, rows))
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

        @app.agent(posts, name="ingest")
        async def ingest(stream: faust.StreamT) -> None:
            progress_rows = plain_dict(self.progress)
            async for batch in self.batches.take(stream, BATCH_RECORDS, BATCH_SECONDS):
                self._between_batches.clear()
                try:
                    await ingest_batch(batch, progress_rows)
                finally:
                    self._between_batches.set()

        self.agent = ingest
        # Installed by the worker (agents.cli): Faust's test contexts put events in the stream.
        self.batches = Batches(app, config.topic, FETCHED_RECORDS, FETCHES_QUEUED)

    def close(self) -> None:
        """Stop stage 1's helper processes, once the worker has stopped. Slices still with
        them belong to batches never acknowledged, read again at the next start; left to
        themselves, they would hold the interpreter's exit until done."""
        if self.helpers is not None:
            self.helpers.close()

    async def between_batches(self, timeout: float) -> None:
        """Return once stage 1 has no batch in hand, or after ``timeout`` seconds: stage 2
        waits for it before it drains its queue (:data:`agents.counters.HOLD_SECONDS`)."""
        if self._between_batches.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._between_batches.wait(), timeout)

    async def _results(
        self, batch: list[list[Record]], progress_rows: Mapping[int, dict[str, Any]]
    ) -> AsyncIterator[SliceResult]:
        """Each slice's result, in order; the caller writes one before it asks for the next.

        With helpers, every slice of the batch is sent at once, chained (see
        :func:`~pipeline.ingest_slice.process_slice`): the helpers work on the next slice
        while the event loop writes this one's results, runs stage 2 and answers scrapes. A
        batch is the limit: asking for the next one acknowledges this one's records."""
        done = 0
        helpers = self.helpers
        if helpers is not None:
            now = time.time()  # the clock ts_out_of_range is judged against
            pending: Pending = []
            try:
                pending = helpers.submit(
                    batch, _rows_of(batch, progress_rows), now, next(self._chains)
                )
                for futures in pending:
                    yield await helpers.result(futures)
                    done += 1
            except BrokenProcessPool:
                # Killed (the OOM killer, most likely): they hold nothing exactness needs, so
                # the worker goes on without them, slower, and says so once. The slices not
                # finished are processed here, from the rows written so far.
                log.error(
                    "a helper process of stage 1 died; ingesting in the worker's own process "
                    "from now on"
                )
                self.helpers = None
                helpers.close()
            finally:
                cancel(pending[done:])
        for records in batch[done:]:
            yield self.processor(records, _rows_of([records], progress_rows), time.time())

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


def slices(batch: Sequence[Message], max_bytes: int | None = None) -> list[list[Record]]:
    """A batch of records cut into slices of at most ``max_bytes`` (default
    :data:`SLICE_BYTES`) of record values; a larger record is a slice of its own. A batch is
    acknowledged when the next one is asked for, so only once every slice of it was
    processed."""
    limit = SLICE_BYTES if max_bytes is None else max_bytes
    out: list[list[Record]] = []
    current: list[Record] = []
    size = 0
    for msg in batch:
        value = msg.value
        n = len(value or b"")
        if size + n > limit and current:
            out.append(current)
            current, size = [], 0
        current.append((msg.partition, msg.offset, value, _is_envelope(msg.headers)))
        size += n
    if current:
        out.append(current)
    return out


def _rows_of(
    batch: list[list[Record]], progress_rows: Mapping[int, dict[str, Any]]
) -> dict[int, dict[str, Any]]:
    """The stored progress rows of the batch's source partitions (absent: none yet)."""
    partitions = {sp for records in batch for sp, *_ in records}
    return {sp: progress_rows[sp] for sp in partitions if sp in progress_rows}


class HelperProcess:
    """A process that runs :func:`~pipeline.ingest_slice.process_slice` for the worker."""

    def __init__(self, config: SliceConfig) -> None:
        # spawn, not fork: the worker has threads (Faust's consumer), and a forked copy of a
        # lock held by one of them would never be released in the child.
        self._pool = ProcessPoolExecutor(
            1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=start_process,
            initargs=(config, os.getpid()),
        )

    def __call__(
        self,
        records: list[Record],
        stored: dict[int, dict[str, Any]],
        now: float,
        chain: int | None = None,
    ) -> asyncio.Future[SliceResult]:
        """The slice's result, to await (sent to the helper now); ``chain``: see
        :func:`~pipeline.ingest_slice.process_slice`."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._pool, process_slice, records, stored, now, chain)

    def _processes(self) -> list[Any]:
        """The pool's process (none before a slice started it)."""
        return list((self._pool._processes or {}).values())

    def pid(self) -> int | None:
        """The process id, once a slice started the process."""
        return next((p.pid for p in self._processes()), None)

    def close(self) -> None:
        """Stop the process now: a slice it is working on, or has queued, is abandoned."""
        processes = self._processes()
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()


class Helpers:
    """Stage 1's slices processed in processes of their own, beside the worker's event loop:
    the loop sends a slice's records and gets back rows and encoded deltas, and meanwhile
    runs stage 2 and the writes (the worker's Python is otherwise one core's worth). Each
    of ``n`` helpers takes a share of a batch's source partitions."""

    def __init__(self, config: SliceConfig, n: int) -> None:
        self.processes = [HelperProcess(config) for _ in range(n)]
        # What each helper learned so far (each result carries its helper's): their sum is
        # the worker's.
        self._learned: list[GenerationInterval | None] = [None] * n

    def submit(
        self, batch: list[list[Record]], stored: dict[int, dict[str, Any]], now: float, chain: int
    ) -> Pending:
        """Every slice of the batch, sent at once: per slice, one future per helper with a
        share of it (:meth:`result` takes them)."""
        size = sum(len(value or b"") for records in batch for _sp, _so, value, _env in records)
        # A small batch (single-event records, a light live feed) goes to one helper: shared,
        # it would cost the event loop a round trip per helper and stage 2 a delta record per
        # helper and target partition, while no helper is busy.
        n = len(self.processes) if size >= SHARE_MIN_BYTES else 1
        share = share_sources((sp for records in batch for sp, *_ in records), n)
        pending: Pending = []
        try:
            for records in batch:
                parts = split_sources(records, share, n)
                pending.append(
                    [
                        (i, self.processes[i](part, stored, now, chain))
                        for i, part in enumerate(parts)
                        if part
                    ]
                )
        except BrokenProcessPool:  # a helper died since the last batch
            cancel(pending)
            raise
        return pending

    async def result(self, futures: list[tuple[int, asyncio.Future[SliceResult]]]) -> SliceResult:
        """A slice's result, from the futures :meth:`submit` gave for it."""
        results = []
        for i, future in futures:
            result = await future
            self._learned[i] = result.interval
            results.append(result)
        learned = [interval for interval in self._learned if interval is not None]
        interval = None
        if learned:
            interval = GenerationInterval()
            for part in learned:
                interval.merge(part)
        return merged(results, interval)

    def pids(self) -> list[int]:
        """The helpers' process ids, once slices started them."""
        return [pid for p in self.processes if (pid := p.pid()) is not None]

    def close(self) -> None:
        """Stop the helpers now, abandoning what they have in hand (they exit on their own
        if the worker dies)."""
        for process in self.processes:
            process.close()


def cancel(pending: Pending) -> None:
    """Slices sent to helpers and then not awaited (the agent was cancelled, or a helper
    died): those not started are not run, and failures already reported are not reported
    again as never retrieved."""
    for futures in pending:
        for _helper, future in futures:
            if not future.done():
                future.cancel()
            elif not future.cancelled():
                future.exception()


def _is_envelope(headers: Any) -> bool:
    if not headers:
        return False
    items = headers.items() if hasattr(headers, "items") else headers
    return any(k == ENVELOPE_HEADER and v == ENVELOPE_FORMAT for k, v in items)

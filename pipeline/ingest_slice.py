"""Stage 1's work on one slice of ``posts`` records, without I/O.

:class:`SliceProcessor` turns the records of a slice (source partition, offset, value,
envelope flag) and the progress rows of their partitions into what the ingest agent then
writes: the new progress rows, the dead letters, the encoded ``hashtag-deltas`` records per
target partition, and the offset gaps it saw. The agent awaits the progress rows at the
broker before it sends the deltas (:mod:`agents.ingest` says why).

Per record, against its partition's progress row (``off``: the last offset counted):

- at or below ``off`` and not already in this slice: counted before (a redelivery after a
  crash or rebalance). Its deltas go out again as an entry of their own, which stage 2 skips
  where it applied them; no counts, no dead letters.
- at or below ``off`` and within this slice's range for the partition: a second copy within
  one slice (a fetch from before a seek and one from after it); the slice's entry has it.
- above ``off``: counted; its lines are judged and pre-aggregated with the slice's other new
  records into one entry whose ranges name the offsets covered per source partition. One
  past ``off + 1`` (when ``off`` is set) is a gap, reported.

The work is pure and picklable in and out, so it can run in processes of their own
(:func:`start_process` / :func:`process_slice`), beside the worker's event loop: the
agent then sends a slice's records there and gets back bytes and rows. Several such helpers
share a slice by source partition (:func:`share_sources`, :func:`merged`): the rules above
are per source partition, so each helper judges its partitions' records as one would judge
them all. The processor keeps two things between slices, neither needed for exactness: a
cache of hashtag partitions, and the :class:`~pipeline.virality.parents.ParentClock` that
learns the generation interval, a copy of which each result carries (with several helpers,
each learns from the parent links within its own partitions, and the worker adds them up).
"""

from __future__ import annotations

import gc
import os
import signal
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline import deltas as wire
from pipeline.aggregate import RecordSummary, summarise
from pipeline.limits import DEFAULT_LIMITS, Limits
from pipeline.settings import DEFAULT_GRACE_SECONDS, GC_THRESHOLDS
from pipeline.virality.generation import GenerationInterval
from pipeline.virality.parents import ParentClock

# (source partition, offset, value, envelope)
Record = tuple[int, int, bytes | None, bool]


def empty_progress() -> dict[str, Any]:
    return {"off": -1, "acc": 0, "rej": {}, "wm": None, "late": 0}


@dataclass(slots=True)
class SliceResult:
    rows: dict[int, dict[str, Any]] = field(default_factory=dict)  # progress rows to store
    dead: list[tuple[bytes, str, bytes]] = field(default_factory=list)  # (source, reason, line)
    deltas: list[tuple[int, bytes]] = field(default_factory=list)  # (target partition, value)
    gaps: list[tuple[int, int, int]] = field(default_factory=list)  # (sp, expected, got)
    interval: GenerationInterval | None = None  # learned so far (None: --no-virality)


@dataclass(frozen=True, slots=True)
class SliceConfig:
    topic: str  # named in the dead letters' ``source``
    deltas_partitions: int
    limits: Limits = DEFAULT_LIMITS
    movements: Mapping[str, str] | None = None
    grace_seconds: float = DEFAULT_GRACE_SECONDS
    virality: bool = True


class SliceProcessor:
    def __init__(self, config: SliceConfig, partition_cache: dict[str, int] | None = None) -> None:
        self.config = config
        self.partition_cache = {} if partition_cache is None else partition_cache
        # Lags between parents and children, learned from the records read here (in memory:
        # after a restart it learns again, with the default interval meanwhile).
        self.parents = ParentClock() if config.virality else None

    def __call__(
        self, records: Sequence[Record], stored: Mapping[int, dict[str, Any]], now: float
    ) -> SliceResult:
        """``stored``: the progress rows of the records' partitions (absent: none yet);
        ``now``: the clock ``ts_out_of_range`` is judged against."""
        cfg = self.config
        limits, movements, grace = cfg.limits, cfg.movements, cfg.grace_seconds
        out = SliceResult()
        rows = out.rows
        entries: list[wire.Entry] = []
        ranges: dict[int, list[int]] = {}  # sp -> [first, last] of the new records
        fresh: dict[str, Any] = {}  # tag deltas of every new record in the slice
        fresh_wm: float | None = None
        for sp, so, value, envelope in records:
            row = rows.get(sp) or stored.get(sp) or empty_progress()
            span = ranges.get(sp)
            if so <= row["off"]:
                if span is not None and so >= span[0]:
                    # A second copy within this slice (fetched before and after a seek): an
                    # entry of its own, sent ahead of the slice's, would make stage 2 skip the
                    # slice's entry as partly applied.
                    continue
                # Counted before: deltas again, as an entry stage 2 skips where it applied it.
                s = summarise(value, envelope, limits=limits, now=now, movements=movements)
                entries.append(([(sp, so, so)], s.max_ts, s.tags))
                continue
            if so > row["off"] + 1 and row["off"] >= 0:
                out.gaps.append((sp, row["off"] + 1, so))
            if span is None:
                ranges[sp] = [so, so]
            else:
                span[1] = so
            wm = row["wm"]
            summary = summarise(
                value,
                envelope,
                into=fresh,
                limits=limits,
                now=now,
                movements=movements,
                parents=self.parents,
                late_before=None if wm is None else wm - grace,
            )
            if summary.max_ts is not None and (fresh_wm is None or summary.max_ts > fresh_wm):
                fresh_wm = summary.max_ts
            rows[sp] = advance(row, so, summary)
            if summary.rejected:
                source = f"{cfg.topic}/{sp}/{so}".encode()
                out.dead.extend((source, reason, line) for reason, line in summary.rejected)
        if ranges:
            entries.append(([(sp, f, last) for sp, (f, last) in ranges.items()], fresh_wm, fresh))
        by_target: dict[int, list[wire.Entry]] = {}
        for entry_ranges, wm, tags in entries:
            split = wire.split_by_partition(tags, cfg.deltas_partitions, self.partition_cache)
            for target, part in split.items():
                by_target.setdefault(target, []).append(
                    wire.entry(entry_ranges, wm, part, with_users=cfg.virality)
                )
        out.deltas = [
            (target, value)
            for target, delta_entries in by_target.items()
            for value in wire.encode_records(delta_entries)
        ]
        if self.parents is not None:
            out.interval = self.parents.interval
        return out


def advance(row: dict[str, Any], offset: int, summary: RecordSummary) -> dict[str, Any]:
    """``row`` after counting the record at ``offset``."""
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


def share_sources(partitions: Iterable[int], helpers: int) -> dict[int, int]:
    """Source partition -> helper (0 .. ``helpers`` - 1): in turn, in partition order, so
    each helper gets as many of them as the others, give or take one."""
    return {sp: i % helpers for i, sp in enumerate(sorted(set(partitions)))}


def split_sources(
    records: Sequence[Record], share: Mapping[int, int], helpers: int
) -> list[list[Record]]:
    """A slice's records per helper, in their order (``share`` from :func:`share_sources`)."""
    parts: list[list[Record]] = [[] for _ in range(helpers)]
    for record in records:
        parts[share[record[0]]].append(record)
    return parts


def merged(results: Sequence[SliceResult], interval: GenerationInterval | None) -> SliceResult:
    """The helpers' results for one slice as one: their source partitions are disjoint, so
    rows, dead letters, deltas and gaps simply add up (each delta record's entries name
    only its helper's partitions). ``interval``: what all of them learned so far."""
    out = SliceResult(interval=interval)
    for result in results:
        out.rows.update(result.rows)
        out.dead += result.dead
        out.deltas += result.deltas
        out.gaps += result.gaps
    return out


# In a process of its own (a ProcessPoolExecutor's initializer, then its tasks).
_processor: SliceProcessor | None = None
_PARENT_POLL_SECONDS = 0.5


def start_process(config: SliceConfig, worker: int) -> None:
    """Initialise a helper process of the worker whose pid is ``worker``. It ignores SIGINT
    and SIGTERM: Ctrl-C in a terminal reaches the whole process group, and the worker, not
    its helper, decides when to stop (the helper ends when the worker closes the pool, or
    exits on its own if the worker dies)."""
    global _processor
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # A slice's tag deltas survive thousands of young collections while they are built; with
    # CPython's default thresholds, the full collections among them were a fifth of a
    # helper's time (stage 1 alone on make bench's workload: 7.0 -> 5.7 s per 1,000,000
    # events), as the worker's tables once were of the worker's.
    gc.set_threshold(*GC_THRESHOLDS)
    # A worker killed with SIGKILL cannot close the pool, and the helper would wait for its
    # next task for ever: the task queue's pipe never reads EOF, as the helper holds a
    # write end of it too. The worker's pid comes from the worker: read here with getppid(),
    # it was already init's when the worker died while this helper started, and the helper
    # then waited for ever (one was left behind by a CI run).
    threading.Thread(target=_exit_with, args=(worker,), daemon=True).start()
    _processor = SliceProcessor(config)


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_PARENT_POLL_SECONDS)
    os._exit(0)


def process_slice(
    records: Sequence[Record],
    stored: Mapping[int, dict[str, Any]],
    now: float,
    chain: int | None = None,
) -> SliceResult:
    """:class:`SliceProcessor` on a slice, in the helper. Slices sent with the same ``chain``
    (the slices of one batch, all sent at once with the rows stored before the batch) follow
    on from each other: each reads the rows the chain's earlier slices left, which the worker
    has not written yet. So the helper works on a batch's next slice while the worker writes
    the last one's results."""
    global _chain
    assert _processor is not None, "start_process was not called in this process"
    if chain is None:
        return _processor(records, stored, now)
    if _chain[0] != chain:
        _chain = (chain, {})
    rows = _chain[1]
    result = _processor(records, {**stored, **rows}, now)
    rows.update(result.rows)
    return result


_chain: tuple[int | None, dict[int, dict[str, Any]]] = (None, {})

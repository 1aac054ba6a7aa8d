"""``spread replay``: send event files to topic ``posts`` in envelopes, paced in event time.

Each record is an envelope of up to ``envelope`` events as JSON lines (DESIGN "Dataflow"); its
Kafka timestamp is the newest event time in it. ``speed`` N plays N seconds of event time per
wall second (``None`` = as fast as the broker acknowledges). Records go to the partitions of
``posts`` round-robin: counts do not depend on placement, and round-robin spreads load evenly.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import orjson

from pipeline import hashtags
from pipeline.checkpoint import Checkpoint
from pipeline.events import ENVELOPE_FORMAT, ENVELOPE_HEADER
from pipeline.formats import CONVERTERS, tabular
from pipeline.formats.convert import ConvertError
from pipeline.formats.native import STDIN, FormatError, iter_lines, open_binary, position, size
from pipeline.limits import DEFAULT_LIMITS
from pipeline.ordering import DEFAULT_BUFFER, Timed, merge, reorder, sort_all
from pipeline.producer import ensure_topics, start_producer
from pipeline.settings import DEFAULT_PARTITIONS, POSTS

DEFAULT_ENVELOPE = 1000
ENVELOPE_MAX_BYTES = 900 * 1024
# When paced, an envelope closes once it spans this much wall time, so a slow replay still
# delivers events close to their due time instead of in large late bursts.
PACED_ENVELOPE_WALL_SECONDS = 0.1
IN_FLIGHT = 256
ENVELOPE_HEADERS = [(ENVELOPE_HEADER, ENVELOPE_FORMAT)]


@dataclass(slots=True)
class ReplayStats:
    events: int = 0
    records: int = 0
    bytes_read: int = 0
    bytes_total: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    started: float = 0.0
    finished: float = 0.0
    skipped: int = 0  # source lines that held no event (non-native formats)
    out_of_order: int = 0  # events older than one already sent, past the reorder buffer
    filtered: int = 0  # events left out by --from/--to/--hashtag
    resumed_from: int = 0  # events skipped as acknowledged by an interrupted replay
    problems: list[str] = field(default_factory=list)  # the first few, as "FILE:LINE: why"
    read_by_file: dict[str, int] = field(default_factory=dict)

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def rate(self) -> float:
        return self.events / self.elapsed if self.elapsed > 0 else 0.0


class _Timed(msgspec.Struct):
    ts: Any = None


# Only ``ts`` is read: msgspec skips the other fields without building them, ~5x faster than
# orjson's whole dict, which was a fifth of ``spread replay``'s CPU.
_decode_timed = msgspec.json.Decoder(_Timed).decode


def event_time(line: bytes, latest: float | None = None) -> float | None:
    """The ``ts`` of a line if it is a JSON object with a finite numeric ``ts`` in range.

    Out of range (negative, or after ``latest``: by default the clock plus the worker's
    ``max_future_seconds``) counts as no time at all: the worker rejects such an event, and
    one line dated 33658 must not stop the pacing of the rest of a file for ever. The other
    fields are skipped unchecked, so a line broken only elsewhere (bad UTF-8 in a string, a
    number out of range) keeps its place in event time; the worker dead-letters it all the same.
    """
    try:
        ts = _decode_timed(line).ts
    except msgspec.MsgspecError:
        return None
    # An int may have 400 digits (msgspec keeps it exact): compared, never made a float first.
    if type(ts) is int or (type(ts) is float and math.isfinite(ts)):
        if latest is None:
            latest = time.time() + DEFAULT_LIMITS.max_future_seconds
        if 0 <= ts <= latest:
            return float(ts)
    return None


@dataclass(slots=True)
class Envelope:
    lines: list[bytes]
    ts: float | None  # newest event time in it, None if no line had one


def envelopes(
    lines: Iterator[bytes], size: int, speed: float | None, max_bytes: int = ENVELOPE_MAX_BYTES
) -> Iterator[Envelope]:
    """Cut lines into envelopes by count, bytes and (when paced) event-time span."""
    return timed_envelopes(((event_time(line), line) for line in lines), size, speed, max_bytes)


def timed_envelopes(
    items: Iterable[Timed], size: int, speed: float | None, max_bytes: int = ENVELOPE_MAX_BYTES
) -> Iterator[Envelope]:
    """:func:`envelopes` of lines whose event time is already known."""
    batch: list[bytes] = []
    nbytes = 0
    newest: float | None = None
    oldest: float | None = None
    span = PACED_ENVELOPE_WALL_SECONDS * speed if speed else None
    for ts, line in items:
        if batch and (
            len(batch) >= size
            or nbytes + len(line) + 1 > max_bytes
            or (span is not None and ts is not None and oldest is not None and ts - oldest > span)
        ):
            yield Envelope(batch, newest)
            batch, nbytes, newest, oldest = [], 0, None, None
        batch.append(line)
        nbytes += len(line) + 1
        if ts is not None:
            newest = ts if newest is None or ts > newest else newest
            oldest = ts if oldest is None or ts < oldest else oldest
    if batch:
        yield Envelope(batch, newest)


@dataclass(frozen=True, slots=True)
class Selection:
    """What to replay and in which order (``spread replay`` options)."""

    fmt: str = "native"
    strict: bool = False
    sort: bool = False
    buffer: int = DEFAULT_BUFFER
    since: float | None = None  # --from, epoch seconds, inclusive
    until: float | None = None  # --to, exclusive
    hashtags: frozenset[str] = frozenset()  # normalised
    limit: int | None = None
    mapping: tuple[tuple[str, str], ...] = ()  # CSV: (field, column)


MAX_PROBLEMS_KEPT = 20


def detect(line: bytes) -> str:
    """The format of a file from its first non-blank line."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        # A header naming a time column is a CSV/TSV dump; anything else is judged line by
        # line by the worker, as any native line.
        return "csv" if tabular.looks_like(line) else "native"
    for name, module in CONVERTERS.items():
        if module.looks_like(obj):
            return name
    return "native"


def _csv_lines(
    stream: Any,
    raw: Any,
    path: str | Path,
    stats: ReplayStats,
    strict: bool,
    mapping: Mapping[str, str],
) -> Iterator[bytes]:
    try:
        for lineno, result in tabular.rows(stream, Path(str(path)).name, mapping):
            if lineno & 255 == 1:
                stats.read_by_file[str(path)] = position(raw)
                stats.bytes_read = sum(stats.read_by_file.values())
            if isinstance(result, bytes):
                yield result
                continue
            problem = f"{path}:{lineno}: {result}"
            if strict:
                raise FormatError(f"{problem} (--strict)")
            stats.skipped += 1
            if len(stats.problems) < MAX_PROBLEMS_KEPT:
                stats.problems.append(problem)
    except ConvertError as exc:  # the header: no time column, a --map naming no column
        raise FormatError(f"{path}: {exc}") from None


def _file_lines(
    paths: Sequence[str | Path],
    stats: ReplayStats,
    fmt: str = "native",
    strict: bool = False,
    mapping: Mapping[str, str] | None = None,
) -> Iterator[bytes]:
    """Native event lines from every file: native lines as they are (the worker judges them);
    other formats converted, a line that holds no event reported and skipped (or fatal with
    ``strict``)."""
    mapping = mapping or {}
    for path in paths:
        stream, raw = open_binary(path)
        with raw, stream:
            file_fmt = fmt
            if fmt == "auto":
                head = stream.peek(1 << 16).split(b"\n", 1)[0].rstrip(b"\r")  # type: ignore[attr-defined]
                file_fmt = "csv" if detect(head) == "csv" else "auto"
            if file_fmt == "csv":
                yield from _csv_lines(stream, raw, path, stats, strict, mapping)
                stats.read_by_file[str(path)] = size(path)
                stats.bytes_read = sum(stats.read_by_file.values())
                continue
            for lineno, line in enumerate(iter_lines(stream, path), 1):
                if lineno & 255 == 1:  # files are read side by side when merged
                    stats.read_by_file[str(path)] = position(raw)
                    stats.bytes_read = sum(stats.read_by_file.values())
                if file_fmt == "auto":
                    # A CSV header longer than the peek above: too late to read rows.
                    file_fmt = detect(line).replace("csv", "native")
                if file_fmt == "native":
                    yield line
                    continue
                try:
                    yield from CONVERTERS[file_fmt].convert(line)
                except ConvertError as exc:
                    problem = f"{path}:{lineno}: {exc}"
                    if strict:
                        raise FormatError(f"{problem} (--strict)") from None
                    stats.skipped += 1
                    if len(stats.problems) < MAX_PROBLEMS_KEPT:
                        stats.problems.append(problem)
            stats.read_by_file[str(path)] = size(path)
            stats.bytes_read = sum(stats.read_by_file.values())


def selected(paths: Sequence[str | Path], stats: ReplayStats, sel: Selection) -> Iterator[Timed]:
    """The events to send, in event-time order, as ``(ts, line)``: every file converted,
    reordered (or sorted), merged, filtered and limited."""
    streams = []
    for path in paths:
        timed = (
            (event_time(line), line)
            for line in _file_lines([path], stats, sel.fmt, sel.strict, dict(sel.mapping))
        )
        streams.append(sort_all(timed) if sel.sort else reorder(timed, sel.buffer, stats))
    sent = 0
    for ts, line in merge(streams):
        if sel.since is not None or sel.until is not None:
            if ts is None or (sel.since is not None and ts < sel.since):
                stats.filtered += 1
                continue
            if sel.until is not None and ts >= sel.until:
                stats.filtered += 1
                continue
        if sel.hashtags and not sel.hashtags & _tags_of(line):
            stats.filtered += 1
            continue
        if sel.limit is not None and sent >= sel.limit:
            return
        sent += 1
        yield ts, line


def _tags_of(line: bytes) -> set[str]:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return set()
    tags = obj.get("hashtags") if isinstance(obj, dict) else None
    if not isinstance(tags, list):
        return set()
    return set(hashtags.distinct(t for t in tags if isinstance(t, str)))


async def replay(
    paths: Sequence[str | Path],
    bootstrap: str,
    speed: float | None = None,
    envelope: int = DEFAULT_ENVELOPE,
    partitions: int = DEFAULT_PARTITIONS,
    topic: str = POSTS,
    on_progress: Callable[[ReplayStats], None] | None = None,
    fmt: str = "native",
    strict: bool = False,
    selection: Selection | None = None,
    checkpoint: Checkpoint | None = None,
    resume: bool = False,
    interruptible: bool = False,
) -> ReplayStats:
    """Send every line of ``paths`` to ``topic``; return once the broker acknowledged all.

    ``checkpoint``: record the acknowledged position after every batch (and skip what it holds
    when ``resume``). ``interruptible``: SIGINT/SIGTERM stop sending, wait for the records in
    flight, save the checkpoint and raise :class:`ReplayInterrupted`, so that nothing
    acknowledged is sent again on ``--resume`` and nothing unacknowledged is skipped.
    """
    for p in paths:  # fail on an unreadable file before touching the broker
        if str(p) != STDIN:
            open_binary(p)[1].close()
    stats = ReplayStats(bytes_total=sum(size(p) for p in paths))
    sel = selection or Selection(fmt=fmt, strict=strict)
    return await send_lines(
        selected(paths, stats, sel),  # a generator: nothing is read before the broker is up
        bootstrap,
        stats,
        speed=speed,
        envelope=envelope,
        partitions=partitions,
        topic=topic,
        on_progress=on_progress,
        checkpoint=checkpoint,
        resume=resume,
        interruptible=interruptible,
    )


async def send_lines(
    items: Iterable[Timed],
    bootstrap: str,
    stats: ReplayStats,
    speed: float | None = None,
    envelope: int = DEFAULT_ENVELOPE,
    partitions: int = DEFAULT_PARTITIONS,
    topic: str = POSTS,
    on_progress: Callable[[ReplayStats], None] | None = None,
    checkpoint: Checkpoint | None = None,
    resume: bool = False,
    interruptible: bool = False,
) -> ReplayStats:
    """Send ``(event time, line)`` items in envelopes to ``topic``, paced by ``speed``; return
    once the broker acknowledged all. The send path of ``spread replay`` (files) and
    ``spread simulate`` (a generator); ``stats`` is filled in as it goes.

    ``checkpoint``/``resume``/``interruptible``: as :func:`replay` (the first items the
    checkpoint holds are skipped, not sent).
    """
    counts = await ensure_topics(bootstrap, {topic: partitions})
    n_parts = counts[topic]
    producer = await start_producer(bootstrap)
    pending: list[asyncio.Future] = []
    stats.started = time.monotonic()
    last_report = 0.0
    skip = checkpoint.load() if checkpoint is not None and resume else 0
    stats.resumed_from = skip
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if interruptible:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

    async def acknowledged() -> None:
        await asyncio.gather(*pending)
        pending.clear()
        if checkpoint is not None:
            checkpoint.save(skip + stats.events)

    try:
        items = itertools.islice(items, skip, None)
        for i, env in enumerate(timed_envelopes(items, envelope, speed)):
            if stop.is_set():
                break
            if env.ts is not None:
                if stats.first_ts is None:
                    stats.first_ts = env.ts
                stats.last_ts = env.ts if stats.last_ts is None else max(stats.last_ts, env.ts)
                if speed:
                    due = stats.started + (env.ts - stats.first_ts) / speed
                    delay = due - time.monotonic()
                    if delay > 0:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), delay)
                        if stop.is_set():
                            break
            ts_ms = int((env.ts if env.ts is not None else (stats.last_ts or time.time())) * 1000)
            fut = await producer.send(
                topic,
                value=b"\n".join(env.lines),
                partition=i % n_parts,
                timestamp_ms=max(ts_ms, 0),
                headers=ENVELOPE_HEADERS,
            )
            pending.append(fut)
            stats.events += len(env.lines)
            stats.records += 1
            if len(pending) >= IN_FLIGHT:
                await acknowledged()
            now = time.monotonic()
            if on_progress and now - last_report > 0.25:
                last_report = now
                on_progress(stats)
        await acknowledged()
        await producer.flush()
    finally:
        if interruptible:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        await producer.stop()
    stats.finished = time.monotonic()
    if stop.is_set():
        raise ReplayInterrupted(skip + stats.events)
    if checkpoint is not None:
        checkpoint.clear()
    if on_progress:
        on_progress(stats)
    return stats


class ReplayInterrupted(Exception):
    """Stopped by a signal after ``acked`` events were acknowledged (and checkpointed)."""

    def __init__(self, acked: int) -> None:
        super().__init__(acked)
        self.acked = acked


def is_terminal() -> bool:
    return sys.stderr.isatty()

"""Where simulated events go: a JSONL file (gzip when it ends in ``.gz``), with progress.

Sending to Kafka is :func:`pipeline.replay.send_lines`, the same path as ``spread replay``.
Progress is measured in event time (how far through the scenario's hours), which
:class:`pipeline.progress.Reporter` shows through the ``bytes_read``/``bytes_total`` fields.
"""

from __future__ import annotations

import gzip
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

from pipeline.ordering import Timed
from pipeline.replay import ReplayStats
from pipeline.simulate.scenario import Scenario

CHUNK = 4096  # lines per write
REPORT_EVERY = 0.25  # seconds between progress callbacks


def tracked(items: Iterable[Timed], stats: ReplayStats, scenario: Scenario) -> Iterator[Timed]:
    """``items`` unchanged, recording event-time progress (milliseconds) in ``stats``."""
    start = scenario.start
    stats.bytes_total = int(scenario.hours * 3_600_000)
    for ts, line in items:
        stats.bytes_read = int((ts - start) * 1000)  # type: ignore[operator]
        yield ts, line


def write_jsonl(
    items: Iterable[Timed],
    out: str,
    stats: ReplayStats,
    on_progress: Callable[[ReplayStats], None] | None = None,
) -> ReplayStats:
    """Write every line of ``items`` to ``out`` (``-`` = standard output). A ``.gz`` file is
    gzip with a zero timestamp and no name in its header, so the bytes depend only on the
    events."""
    raw: BinaryIO = sys.stdout.buffer if out == "-" else open(out, "wb")  # noqa: SIM115
    sink: BinaryIO = (
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6)
        if out.endswith(".gz")
        else raw
    )
    stats.started = time.monotonic()
    last = 0.0
    batch: list[bytes] = []
    try:
        for ts, line in items:
            if stats.first_ts is None:
                stats.first_ts = ts
            stats.last_ts = ts
            batch.append(line)
            if len(batch) >= CHUNK:
                sink.write(b"\n".join(batch) + b"\n")
                stats.events += len(batch)
                batch.clear()
                now = time.monotonic()
                if on_progress and now - last > REPORT_EVERY:
                    last = now
                    on_progress(stats)
        if batch:
            sink.write(b"\n".join(batch) + b"\n")
            stats.events += len(batch)
    finally:
        if sink is not raw:
            sink.close()
        if raw is not sys.stdout.buffer:
            raw.close()
        else:
            raw.flush()
    stats.finished = time.monotonic()
    if on_progress:
        on_progress(stats)
    return stats

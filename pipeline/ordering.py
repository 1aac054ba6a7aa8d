"""Event-time order for replays: several files merged, unsorted files repaired within bounds.

Semantics (the worker counts exactly in any order; order matters for pacing and for which
minute buckets a live dashboard fills first):

- Each file is read through a bounded reorder buffer of ``buffer`` events (a min-heap on
  ``ts``): a file whose disorder fits in the buffer comes out sorted. An event older than one
  already emitted is out of order past the buffer: it is emitted at once and counted
  (``ReplayStats.out_of_order``), never dropped. ``sort=True`` sorts a whole file in memory
  instead.
- Files are then merged by ``ts`` (``heapq.merge``), so several archives replay as one
  stream.
- Lines without a usable ``ts`` (broken lines, which the worker will dead-letter) pass
  straight through.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

Timed = tuple[float | None, bytes]

DEFAULT_BUFFER = 200_000


class OutOfOrderCount(Protocol):
    out_of_order: int


@dataclass(slots=True)
class OrderStats:
    out_of_order: int = 0


def reorder(items: Iterable[Timed], buffer: int, stats: OutOfOrderCount) -> Iterator[Timed]:
    """Bounded reordering of one stream (see the module docstring)."""
    heap: list[tuple[float, int, bytes]] = []
    seq = itertools.count()  # ties keep file order; bytes are never compared
    last = float("-inf")
    for ts, line in items:
        if ts is None:
            yield ts, line
            continue
        if ts < last:
            stats.out_of_order += 1
            yield ts, line
            continue
        if len(heap) < buffer:
            heapq.heappush(heap, (ts, next(seq), line))
            continue
        ts0, _, line0 = heapq.heappushpop(heap, (ts, next(seq), line))
        last = ts0
        yield ts0, line0
    while heap:
        ts0, _, line0 = heapq.heappop(heap)
        yield ts0, line0


def sort_all(items: Iterable[Timed]) -> Iterator[Timed]:
    """A whole stream sorted by ``ts`` in memory; untimed lines first."""
    return iter(sorted(items, key=lambda item: float("-inf") if item[0] is None else item[0]))


def merge(streams: Sequence[Iterable[Timed]]) -> Iterator[Timed]:
    """Ordered streams merged into one ordered stream."""
    if len(streams) == 1:
        return iter(streams[0])
    return heapq.merge(*streams, key=lambda item: float("-inf") if item[0] is None else item[0])

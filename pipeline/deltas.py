"""Topic ``hashtag-deltas``: the wire format between stage 1 and stage 2, and how stage 2
applies it idempotently.

Stage 1 pre-aggregates a batch of ``posts`` records and sends at most one delta record per
partition of ``hashtag-deltas``; the partition of a hashtag is the Kafka default partitioner's
(murmur2) hash of its UTF-8 bytes, so one stage-2 owner sees every delta of a hashtag. A delta
record holds entries, each covering a contiguous range of offsets ``[first, last]`` of one
source partition ``sp`` (JSON)::

    {"e": [[sp, first, last, wm,
            {"metoo": [posts, {region: posts}, [[minute_start, posts], ...], {region: first_ts}]}],
           ...]}

Idempotence: every stored value carries ``m``, the highest source offset applied per source
partition. An entry whose ``last`` is not above the mark of its ``sp`` was applied already
(redelivered after a crash or rebalance) and is skipped. Each stored value is self-contained
(its own marks), so whichever changelog writes survived a crash, each one is consistent.

Why a range never straddles a mark: stage 1 records, per source partition, the last offset it
counted, and waits for the broker to acknowledge that record *before* it sends the deltas. A
record above that mark was therefore never sent before, and its batch's range is entirely new;
a record at or below it is a redelivery, which stage 1 sends as an entry of its own
(``first == last``). Entries of one source partition reach a ``hashtag-deltas`` partition in
offset order: one owner processes a partition sequentially and the producer keeps order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiokafka.partitioner import murmur2

from pipeline.aggregate import TagDelta


def partition_for(tag: str, partitions: int) -> int:
    """Partition of ``tag`` as the Kafka default partitioner would place key ``tag``."""
    return (murmur2(tag.encode()) & 0x7FFFFFFF) % partitions


def split_by_partition(
    tags: Mapping[str, TagDelta], partitions: int, cache: dict[str, int] | None = None
) -> dict[int, dict[str, TagDelta]]:
    """Group a record's tag deltas by their target partition."""
    cache = {} if cache is None else cache
    out: dict[int, dict[str, TagDelta]] = {}
    for tag, delta in tags.items():
        p = cache.get(tag)
        if p is None:
            p = cache[tag] = partition_for(tag, partitions)
        out.setdefault(p, {})[tag] = delta
    return out


Entry = list  # [sp, first, last, wm, {tag: wire TagDelta}]

APPLY, SKIP, OVERLAP = "apply", "skip", "overlap"


def entry(sp: int, first: int, last: int, wm: float | None, tags: Mapping[str, TagDelta]) -> Entry:
    """One source range's contribution (minute buckets as pairs: JSON keys are strings)."""
    return [
        sp,
        first,
        last,
        wm,
        {t: [d[0], d[1], list(d[2].items()), d[3]] for t, d in tags.items()},
    ]


def encode(entries: list[Entry]) -> bytes:
    return orjson.dumps({"e": entries})


def decode(value: bytes) -> list[Entry]:
    return orjson.loads(value)["e"]


def check(marks: Mapping[str, int] | None, sp: int, first: int, last: int) -> str:
    """APPLY a new range, SKIP an applied one; OVERLAP cannot happen (see module docstring)."""
    mark = marks.get(str(sp), -1) if marks else -1
    if last <= mark:
        return SKIP
    if first <= mark:
        return OVERLAP
    return APPLY


def new_total() -> dict[str, Any]:
    return {"n": 0, "r": {}, "f": {}, "m": {}}


def copy_total(value: Mapping[str, Any]) -> dict[str, Any]:
    return {"n": value["n"], "r": dict(value["r"]), "f": dict(value["f"]), "m": dict(value["m"])}


def merge_total(
    value: dict[str, Any],
    sp: int,
    last: int,
    posts: int,
    by_region: Mapping[str, int],
    first_seen: Mapping[str, float],
) -> None:
    """Add a delta to a per-hashtag value the caller owns (mutated in place).

    Value: ``{"n": posts, "r": {region: posts}, "f": {region: first_ts}, "m": marks}``.
    """
    value["n"] += posts
    regions = value["r"]
    for region, count in by_region.items():
        regions[region] = regions.get(region, 0) + count
    first = value["f"]
    for region, ts in first_seen.items():
        earliest = first.get(region)
        if earliest is None or ts < earliest:
            first[region] = ts
    value["m"][str(sp)] = last


def merge_bucket(value: list[Any], sp: int, last: int, posts: int) -> None:
    """Add to a ``[posts, marks]`` (hashtag, minute) bucket the caller owns."""
    value[0] += posts
    value[1][str(sp)] = last

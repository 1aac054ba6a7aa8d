"""Topic ``hashtag-deltas``: the wire format between stage 1 and stage 2, and how stage 2
applies it idempotently.

Stage 1 summarises each record of ``posts`` (source partition ``sp``, offset ``so``) and, per
batch of records, sends at most one delta record per partition of ``hashtag-deltas``; the
partition of a hashtag is the Kafka default partitioner's (murmur2) hash of its UTF-8 bytes, so
one stage-2 owner sees every delta of a hashtag. A delta record keeps one entry per source
record, so that each can be skipped on its own (JSON)::

    {"e": [[sp, so, wm,
            {"metoo": [posts, {region: posts}, [[minute_start, posts], ...], {region: first_ts}]}],
           ...]}

Idempotence: every stored value carries ``m``, the highest source offset applied per source
partition. A delta whose ``so`` is not above the mark of its ``sp`` has been applied already
(redelivered after a crash or rebalance) and is skipped. Each stored value is self-contained
(its own marks), so whichever changelog writes survived a crash, each one is consistent.
Source offsets of one ``posts`` partition reach a ``hashtag-deltas`` partition in order, because
one owner processes a partition sequentially and the producer keeps per-partition order.
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


Entry = list  # [sp, so, wm, {tag: wire TagDelta}]


def entry(sp: int, so: int, wm: float | None, tags: Mapping[str, TagDelta]) -> Entry:
    """One source record's contribution (minute buckets as pairs: JSON keys are strings)."""
    return [sp, so, wm, {t: [d[0], d[1], list(d[2].items()), d[3]] for t, d in tags.items()}]


def encode(entries: list[Entry]) -> bytes:
    return orjson.dumps({"e": entries})


def decode(value: bytes) -> list[Entry]:
    return orjson.loads(value)["e"]


def is_applied(marks: Mapping[str, int] | None, sp: int, so: int) -> bool:
    """True when the delta from (sp, so) is already reflected in a value with these marks."""
    return bool(marks) and marks.get(str(sp), -1) >= so


def apply_total(
    value: Mapping[str, Any] | None,
    sp: int,
    so: int,
    posts: int,
    by_region: Mapping[str, int],
    first_seen: Mapping[str, float],
) -> dict[str, Any] | None:
    """New per-hashtag total value, or None when this delta was applied before.

    Value: ``{"n": posts, "r": {region: posts}, "f": {region: first_ts}, "m": marks}``.
    """
    marks = value.get("m") if value else None
    if is_applied(marks, sp, so):
        return None
    if value:
        regions = dict(value["r"])
        first = dict(value["f"])
        n = value["n"] + posts
    else:
        regions, first, n = {}, {}, posts
    for region, count in by_region.items():
        regions[region] = regions.get(region, 0) + count
    for region, ts in first_seen.items():
        earliest = first.get(region)
        if earliest is None or ts < earliest:
            first[region] = ts
    return {"n": n, "r": regions, "f": first, "m": {**(marks or {}), str(sp): so}}


def apply_bucket(value: list[Any] | None, sp: int, so: int, posts: int) -> list[Any] | None:
    """New ``[posts, marks]`` value of one (hashtag, minute) bucket, or None if applied."""
    marks = value[1] if value else None
    if is_applied(marks, sp, so):
        return None
    count = (value[0] if value else 0) + posts
    return [count, {**(marks or {}), str(sp): so}]

"""Topic ``hashtag-deltas``: the wire format between stage 1 and stage 2, and how stage 2
applies it idempotently.

Stage 1 pre-aggregates a batch of ``posts`` records and sends at most one delta record per
partition of ``hashtag-deltas``; the partition of a hashtag is the Kafka default partitioner's
(murmur2) hash of its UTF-8 bytes, so one stage-2 owner sees every delta of a hashtag. A delta
record holds entries; an entry sums the records of one or more contiguous offset ranges
``[first, last]``, at most one per source partition ``sp`` (JSON)::

    {"e": [[[[sp, first, last], ...], wm,
            {"metoo": [posts, {region: posts},
                       {hour: {minute: [posts, children, {region: posts}]}},
                       {region: first_ts}, users]}],
           ...]}

``hour`` and ``minute`` are the epoch seconds of their start as strings (JSON object keys):
the minutes come grouped by the hour, in the shape of a ``hashtag-hours`` row, so that stage 2
looks up one row per hour and takes a row it does not hold yet as it arrives, with no work per
minute. ``children``: posts naming a parent; ``users``: the entry's users, as a list of ids
when few, else their HyperLogLog sketch in base64 (:func:`pipeline.virality.users.pack`).

Deltas written before 2026-12-01 carry the minutes as lists and have four, six or seven
fields: ``[posts, {region: posts}, [[minute, posts], ...], {region: first_ts}, [[minute,
children], ...], users, [[minute, region, posts], ...]]`` (no children, users or regions per
minute when shorter). Stage 2 still reads them (:func:`upgrade`), so a worker upgraded with
deltas in flight loses none.

A batch's new records make one entry whatever the number of source partitions in it (one
per stage-1 helper process, each with its share of them), so a hashtag costs stage 2 one
merge per batch and helper, not one per source partition.

Idempotence: every stored value carries ``m``, the highest source offset applied per source
partition. An entry whose ranges all end at or below their marks was applied already
(redelivered after a crash or rebalance) and is skipped; one whose ranges are all above their
marks is applied and advances them. Each stored value is self-contained (its own marks), so
whichever changelog writes survived a crash, each one is consistent.

Why an entry is never partly applied: stage 1 records, per source partition, the last offset
it counted, and waits for the broker to acknowledge that record *before* it sends the deltas.
A record above that mark was therefore never sent before, and every range of a batch's entry
is entirely new; a record at or below it is a redelivery, which stage 1 sends as an entry of
its own (one range, ``first == last``). Entries of one source partition reach a
``hashtag-deltas`` partition in offset order: one owner processes a partition sequentially and
the producer keeps order. A mixed verdict (OVERLAP) is therefore impossible, and counted if
it ever happens.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiokafka.partitioner import murmur2

from pipeline import aggregate
from pipeline.aggregate import TagDelta
from pipeline.virality import users


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


Entry = list  # [[[sp, first, last], ...], wm, {tag: wire TagDelta}]
Range = tuple[int, int, int]  # (sp, first, last)

APPLY, SKIP, OVERLAP = "apply", "skip", "overlap"
HOUR = aggregate.HOUR  # a hashtag-hours row's span, seconds


def entry(
    ranges: list[Range], wm: float | None, tags: Mapping[str, TagDelta], with_users: bool = True
) -> Entry:
    """One batch's contribution; ``with_users=False`` leaves the users out (a worker run
    with ``--no-virality``). The minutes' buckets, already grouped as the wire carries them,
    are handed over, not copied."""
    return [
        [list(r) for r in ranges],
        wm,
        {
            t: [d[0], d[1], d[2], d[3], users.pack(d[4]) if with_users else []]
            for t, d in tags.items()
        },
    ]


Hours = dict[str, dict[str, list[Any]]]  # {hour: {minute: [posts, children, {region: posts}]}}


def by_hour(buckets: Mapping[int, list[Any]]) -> Hours:
    """Minute buckets by minute (epoch seconds) as the wire carries them: grouped by the
    hour, epoch seconds as strings (JSON object keys)."""
    hours: Hours = {}
    for minute, bucket in buckets.items():
        hour = str(aggregate.hour_of(minute))
        at = hours.get(hour)
        if at is None:
            at = hours[hour] = {}
        at[str(minute)] = bucket
    return hours


def upgrade(delta: list[Any]) -> list[Any]:
    """A wire delta of before 2026-12-01 (minutes as lists, four to seven fields) in today's
    form."""
    posts, by_region, by_minute, first_seen = delta[:4]
    buckets: dict[int, list[Any]] = {m: [n, 0, {}] for m, n in by_minute}
    for m, n in delta[4] if len(delta) > 4 else ():
        buckets[m][1] = n
    for m, region, n in delta[6] if len(delta) > 6 else ():
        buckets[m][2][region] = n
    batch_users = delta[5] if len(delta) > 5 else []
    return [posts, by_region, by_hour(buckets), first_seen, batch_users]


def encode(entries: list[Entry]) -> bytes:
    return orjson.dumps({"e": entries})


# Below aiokafka's and Faust's default max_request_size (1 MiB) and a broker's default
# message.max.bytes, with room for the record's overhead.
MAX_RECORD_BYTES = 512 * 1024


def encode_records(entries: list[Entry], max_bytes: int = MAX_RECORD_BYTES) -> list[bytes]:
    """:func:`encode`, split into records of at most ``max_bytes`` where it can be.

    A batch of records with a long tail of distinct hashtags can make one partition's delta
    larger than a producer may send. Splitting an entry's hashtags between records keeps its
    ranges on each part: stage 2 checks marks per hashtag and per hour row, and every hashtag is
    in exactly one part, so the parts apply exactly as the whole would. A single hashtag's
    delta that is still too large is sent as it is (the producer then says why).
    """
    value = encode(entries)
    if len(value) <= max_bytes:
        return [value]
    if len(entries) > 1:
        half = len(entries) // 2
        return encode_records(entries[:half], max_bytes) + encode_records(entries[half:], max_bytes)
    ranges, wm, tags = entries[0]
    if len(tags) < 2:
        return [value]
    items = list(tags.items())
    half = len(items) // 2
    return encode_records([[ranges, wm, dict(items[:half])]], max_bytes) + encode_records(
        [[ranges, wm, dict(items[half:])]], max_bytes
    )


def decode(value: bytes) -> list[Entry]:
    return orjson.loads(value)["e"]


def marked(ranges: list[list[int]]) -> list[tuple[str, int, int]]:
    """Ranges with the source partition as the marks' key (JSON object keys are strings);
    converted once per entry rather than once per hashtag and bucket."""
    return [(str(sp), first, last) for sp, first, last in ranges]


def check(marks: Mapping[str, int] | None, ranges: list[tuple[str, int, int]]) -> str:
    """APPLY when every range is new, SKIP when every range was applied, else OVERLAP
    (impossible by construction, see the module docstring). ``ranges`` as from :func:`marked`.
    """
    if not marks:
        return APPLY
    new = old = 0
    for sp, first, last in ranges:
        mark = marks.get(sp, -1)
        if last <= mark:
            old += 1
        elif first > mark:
            new += 1
        else:
            return OVERLAP
    if old and new:
        return OVERLAP
    return SKIP if old else APPLY


def advanced(ranges: list[tuple[str, int, int]]) -> dict[str, int]:
    """The marks an applied entry leaves on a value that had none: its last offset per source
    partition (``ranges`` as from :func:`marked`)."""
    return {sp: last for sp, _first, last in ranges}


def advance_marks(marks: dict[str, int], ranges: list[tuple[str, int, int]]) -> None:
    """Record an applied entry in a value's marks (``ranges`` as from :func:`marked`)."""
    for sp, _first, last in ranges:
        marks[sp] = last


def new_total() -> dict[str, Any]:
    """``n`` posts, ``r`` by region, ``f`` first seen by region, ``m`` marks, and ``u`` the
    users (a short list, then a sketch) once there are users (:mod:`pipeline.virality.users`)."""
    return {"n": 0, "r": {}, "f": {}, "m": {}}


def copy_total(value: Mapping[str, Any]) -> dict[str, Any]:
    copy = {"n": value["n"], "r": dict(value["r"]), "f": dict(value["f"]), "m": dict(value["m"])}
    if "u" in value:
        copy["u"] = value["u"]  # immutable text: shared, and its identity tells Unions it's ours
    return copy


def merge_total(
    value: dict[str, Any],
    ranges: list[tuple[str, int, int]],
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
    advance_marks(value["m"], ranges)


def new_row(stored: list[Any] | None) -> list[Any]:
    """A ``[marks, {minute: [posts, children, {region: posts}]}]`` (hashtag, hour) row the
    caller owns: its marks copied, its minutes a shallow copy (:func:`add_minutes` replaces a
    minute's list rather than change it, so the stored row's are never touched), or empty."""
    if not stored:
        return [{}, {}]
    return [dict(stored[0]), dict(stored[1])]


def add_minutes(held: dict[str, list[Any]], minutes: Mapping[str, list[Any]]) -> int:
    """Add an hour's minutes from a wire delta to those of a row from :func:`new_row`. A minute
    the row lacks takes the delta's list as it is (the caller hands it over); one it has gets
    a new list and regions dict, its old ones are left as they were. Returns how many minutes
    are new to the row."""
    added = 0
    for minute, bucket in minutes.items():
        old = held.get(minute)
        if old is None:
            held[minute] = bucket
            added += 1
            continue
        where = dict(old[2])
        for region, n in bucket[2].items():
            where[region] = where.get(region, 0) + n
        held[minute] = [old[0] + bucket[0], old[1] + bucket[1], where]
    return added

"""Stage 1 as pure functions: judge the events of a record and pre-aggregate them.

The ingest agent calls :func:`summarise` once per Kafka record; everything it produces is
plain data so it is unit-tested without a broker. Per distinct normalised hashtag a record
yields one :data:`TagDelta`::

    [posts, {region: posts}, {hour: {minute: [posts, children, {region: posts}]}},
     {region: earliest_ts}, {users}]

``minute`` is the event time floored to the minute, aligned to the epoch (closed-open
buckets ``[m, m + 60)``), and ``hour`` the start of the hour holding it, both as strings (epoch
seconds): the minutes are grouped and keyed as a stage-2 row holds them and the wire carries
them (:mod:`pipeline.deltas`, :mod:`agents.counters`), so that they travel and are stored as
they are built (:func:`minutes` reads them back as numbers). ``children`` counts
the posts that name a ``parent`` (a non-empty string): the secondary cases of the
reproduction number (:mod:`pipeline.virality.reproduction`), as opposed to posts that start a
cascade. The regions split the minute's posts, for the per-region rates. ``users`` is the set
of the posts' ``user`` values (non-empty strings), for the unique-user sketches
(:mod:`pipeline.virality.users`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pipeline import hashtags, regions
from pipeline.events import decode_lines, split_record
from pipeline.limits import DEFAULT_LIMITS, Limits
from pipeline.virality.parents import ParentClock

# [int, dict[str, int], dict[str, dict[str, list[int | dict[str, int]]]], dict[str, float],
#  set[str]]
TagDelta = list

_normalise_tag = lru_cache(maxsize=1 << 16)(hashtags.normalise)
_REGIONS: dict[str | None, str] = {}  # a raw region (None: none given) -> its code


def _region(raw: str | None) -> str:
    code = regions.normalise(raw)  # ZZ for None
    if len(_REGIONS) < 4096:  # a stream of made-up regions stays bounded
        _REGIONS[raw] = code
    return code


@dataclass(slots=True)
class RecordSummary:
    """What one record on ``posts`` contributes."""

    accepted: int = 0
    late: int = 0  # accepted, but older than ``late_before``: in totals, not in minute buckets
    rejected: list[tuple[str, bytes]] = field(default_factory=list)
    max_ts: float | None = None
    tags: dict[str, TagDelta] = field(default_factory=dict)


def minute_of(ts: float) -> int:
    """Start of the epoch-aligned minute bucket holding ``ts``."""
    return int(ts // 60) * 60


HOUR = 3600  # the span a TagDelta groups its minutes by, as a hashtag-hours row does


def hour_of(minute: int) -> int:
    return minute - minute % HOUR


def minutes(hours: Mapping[str, Mapping[str, list[Any]]]) -> Iterator[tuple[int, list[Any]]]:
    """A :data:`TagDelta`'s minute buckets as (minute start, ``[posts, children, {region:
    posts}]``)."""
    for by_minute in hours.values():
        for minute, bucket in by_minute.items():
            yield int(minute), bucket


def _minute_keys(keys: dict[int, tuple[str, str]], ts: float) -> tuple[str, str]:
    """The (hour, minute) keys of the bucket holding ``ts``, remembered in ``keys`` by the
    minute's number (the minutes of a batch are few, its events many)."""
    if len(keys) > 10_000:
        keys.clear()
    minute = minute_of(ts)
    out = keys[minute // 60] = (str(hour_of(minute)), str(minute))
    return out


_MINUTE_KEYS: dict[int, tuple[str, str]] = {}


def _counted(
    raw_tags: Sequence[str], movements: Mapping[str, str] | None, max_chars: int
) -> list[str] | None:
    """The tags a post counts under: its distinct non-empty normalised hashtags, then each
    one's movement key; None when one is longer than ``max_chars`` once normalised."""
    distinct: list[str] = []
    for raw in raw_tags:
        tag = _normalise_tag(raw)
        if len(tag) > max_chars:
            return None
        if tag and tag not in distinct:
            distinct.append(tag)
    if movements:
        for i in range(len(distinct)):  # not the keys appended below
            k = movements.get(distinct[i])
            if k is not None and k not in distinct:
                distinct.append(k)
    return distinct


# A post's only hashtag -> what _counted makes of it: most posts have one, so most skip
# normalising, deduplicating and looking up movements. For one (movements,
# max_hashtag_chars) at a time: the worker has one.
_UNSEEN = object()
_SINGLES: tuple[Any, int, dict[str, list[str] | None]] = (None, 0, {})


def _singles(movements: Mapping[str, str] | None, max_chars: int) -> dict[str, list[str] | None]:
    global _SINGLES
    if _SINGLES[0] is not movements or _SINGLES[1] != max_chars:
        _SINGLES = (movements, max_chars, {})
    return _SINGLES[2]


def _single(
    memo: dict[str, list[str] | None],
    raw: str,
    movements: Mapping[str, str] | None,
    max_chars: int,
) -> list[str] | None:
    if len(memo) >= 1 << 16:
        memo.clear()
    out = memo[raw] = _counted((raw,), movements, max_chars)
    return out


def summarise(
    value: bytes | None,
    envelope: bool = False,
    into: dict[str, TagDelta] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    now: float | None = None,
    movements: Mapping[str, str] | None = None,
    parents: ParentClock | None = None,
    late_before: float | None = None,
) -> RecordSummary:
    """Decode, validate, normalise and pre-aggregate every event line of one record.

    ``envelope``: the producer marked the record as JSON lines (see ``split_record``).
    ``into``: tag deltas to add to (several records pre-aggregated together); the summary's
    ``tags`` is that dict. ``limits`` bound what one event may be (:mod:`pipeline.limits`);
    ``now`` is the clock they are checked against (default: the wall clock).
    ``movements``: normalised tag → movement key (:func:`pipeline.virality.movements.index`);
    an event with any tag of a movement also counts once under that movement's key.
    ``parents``: times accepted events with hashtags against their parents, to learn the
    generation interval (:class:`pipeline.virality.parents.ParentClock`).
    ``late_before``: events older than this are *late*: counted, in totals, regions, first-seen
    times and users, but not in the minute buckets (their windows have closed) nor as
    children, and counted in ``late``.
    """
    out = RecordSummary() if into is None else RecordSummary(tags=into)
    tags_out = out.tags
    minute_keys = _MINUTE_KEYS
    single = _singles(movements, limits.max_hashtag_chars)
    max_ts = None
    accepted = 0
    suffix = parents.suffix if parents is not None else ""
    known_regions = _REGIONS
    max_bytes = limits.max_event_bytes
    max_tags = limits.max_hashtags
    max_chars = limits.max_hashtag_chars
    latest = (time.time() if now is None else now) + limits.max_future_seconds
    lines = split_record(value, envelope, max_bytes)
    for line, event in zip(lines, decode_lines(lines, max_bytes), strict=True):
        if type(event) is str:
            # A too-large line's dead letter keeps its first max_bytes (the others are shorter).
            out.rejected.append((event, line[:max_bytes]))
            continue
        ts = event.ts
        raw_tags = event.hashtags
        reason = None
        if not 0 <= ts <= latest:
            reason = "ts_out_of_range"
        elif raw_tags and len(raw_tags) > max_tags:
            reason = "too_many_hashtags"
        else:
            if raw_tags and len(raw_tags) == 1:
                distinct = single.get(raw_tags[0], _UNSEEN)
                if distinct is _UNSEEN:
                    distinct = _single(single, raw_tags[0], movements, max_chars)
            else:
                distinct = _counted(raw_tags or (), movements, max_chars)
            if distinct is None:
                reason = "hashtag_too_long"
        if reason is not None:
            out.rejected.append((reason, line))
            continue
        accepted += 1
        if max_ts is None or ts > max_ts:
            max_ts = ts
        late = late_before is not None and ts < late_before
        if late:
            out.late += 1
        if not distinct:
            continue
        parent = event.parent
        child = bool(parent) and not late
        kid = 1 if child else 0
        user = event.user or None
        if parents is not None and (child or event.id.endswith(suffix)):
            parents.observe(event.id, ts, parent if child else None)
        region = event.region
        region = known_regions.get(region)
        if region is None:
            region = _region(event.region)
        keys = minute_keys.get(int(ts // 60))
        if keys is None:
            keys = _minute_keys(minute_keys, ts)
        hour, minute = keys
        for tag in distinct:
            delta = tags_out.get(tag)
            if delta is None:
                tags_out[tag] = [
                    1,
                    {region: 1},
                    {} if late else {hour: {minute: [1, kid, {region: 1}]}},
                    {region: ts},
                    {user} if user is not None else set(),
                ]
                continue
            delta[0] += 1
            by_region = delta[1]
            by_region[region] = by_region.get(region, 0) + 1
            if not late:
                by_minute = delta[2].get(hour)
                if by_minute is None:
                    by_minute = delta[2][hour] = {}
                bucket = by_minute.get(minute)
                if bucket is None:
                    by_minute[minute] = [1, kid, {region: 1}]
                else:
                    bucket[0] += 1
                    bucket[1] += kid
                    where = bucket[2]
                    where[region] = where.get(region, 0) + 1
            first = delta[3]
            earliest = first.get(region)
            if earliest is None or ts < earliest:
                first[region] = ts
            if user is not None:
                delta[4].add(user)
    out.accepted = accepted
    out.max_ts = max_ts
    return out

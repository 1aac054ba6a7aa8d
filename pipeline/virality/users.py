"""Unique users per hashtag: HyperLogLog sketches (Apache DataSketches), mergeable and small.

Counting distinct users exactly would keep every user id of every hashtag. A HyperLogLog
sketch with ``LG_K = 14`` (2^14 registers of 4 bits, 8 KiB at most) estimates the count with a
relative standard error of about 0.8 %, so within 2 % about 98 % of the time, whatever the
count; below a few hundred users it keeps the exact list of coupons, so small counts are exact
in practice. Sketches union without loss: the union of two sketches is the sketch of the union
of their users, and adding the same sketch twice changes nothing, so a redelivered delta cannot
inflate a count.

Stage 1 collects the users of each tag in a batch (a set) and ships them (:func:`pack`): up to
``SMALL`` of them as a list of the ids themselves, more as their sketch, serialised compact and
base64-encoded. Most tags of a batch have a handful of users, and building, serialising and
parsing a sketch for each cost stage 1 a fifth of its throughput; a list costs nothing.
Stage 2 keeps a hashtag's users as the sorted list of their ids while there are at most
``EXACT`` of them (exact, and a set union costs a microsecond), and as a sketch beyond that:
unions of sketches cost tens of microseconds per hashtag per batch, which for a long tail of
small hashtags was most of what unique users cost the worker (:class:`Unions` keeps the union
objects of the large ones in memory between batches; the stored value, list or base64 text,
is written to the changelog like the rest of the total).
The collector reads estimates from the stored text at scrape time (:func:`estimate`).
"""

from __future__ import annotations

import base64
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Iterable

from datasketches import hll_sketch, hll_union, tgt_hll_type

LG_K = 14
_TYPE = tgt_hll_type.HLL_4
# What stage 2 stores for a union: its own register width, so getting the result is a copy.
# HLL_4 packs the registers in half the bytes but costs a conversion (aux exceptions) of
# ~215 us per full sketch against ~1 us, and a hot hashtag's union is stored every batch.
_STORED_TYPE = tgt_hll_type.HLL_8
SMALL = 16  # users shipped as a list, not a sketch
EXACT = 64  # users stored as a list, not a sketch
CACHE_BUDGET_BYTES = 48 * 2**20  # of stored sketch text behind the cached unions


def sketch(users: Iterable[str]) -> hll_sketch:
    s = hll_sketch(LG_K, _TYPE)
    for user in users:
        s.update(user)
    return s


def pack(users: set[str] | frozenset[str]) -> list[str] | str:
    """A batch's users of one tag for the wire: the ids when few, else their sketch."""
    return list(users) if len(users) <= SMALL else encode(sketch(users))


def encode(s: hll_sketch) -> str:
    return base64.b64encode(s.serialize_compact()).decode("ascii")


def decode(text: str) -> hll_sketch:
    return hll_sketch.deserialize(base64.b64decode(text))


def estimate(stored: str | list[str] | None) -> float:
    """Distinct users of a stored value: exact for a list, the sketch's estimate otherwise."""
    if not stored:
        return 0.0
    if isinstance(stored, list):
        return float(len(stored))
    return decode(stored).get_estimate()


class Unions:
    """Stage 2's in-memory unions, one per hashtag, valid only while the stored text is the
    one this process wrote: after a rebalance or a restore the text differs and the union is
    rebuilt from it, so a union never carries users the stored sketch lost."""

    def __init__(self, capacity: int = 65536, budget_bytes: int = CACHE_BUDGET_BYTES) -> None:
        # Insertion-ordered: the least recently merged tag is first, evicted beyond capacity
        # or the byte budget (a cold tag's union is rebuilt from its stored text). An
        # OrderedDict, whose front is found in O(1): a dict's front is found by scanning past
        # the slots deleted since its last resize (see pipeline.virality.parents).
        self._unions: OrderedDict[str, tuple[str, hll_union]] = OrderedDict()
        self.capacity = capacity
        # A union's memory follows its sketch, and so does its stored text: measured, ~1 KB
        # against 0.55 KB of text at 100 users, ~7 against 5.4 at 1,000, ~8 against 11 as a
        # full HLL. So the cache is bounded by the texts' length, not by a count alone: 4,096
        # unions were too few for the soak's long tail (a million hashtags, by estimate
        # ~10,000 of them past EXACT users: rebuilding the evicted ones was a fifth of what
        # unique users cost stage 2), and a count does not say how much memory they hold.
        self.budget_bytes = budget_bytes
        self._bytes = 0

    def merge(
        self, key: str, stored: str | list[str] | None, incoming: str | list[str]
    ) -> str | list[str]:
        """The union of ``stored`` (this key's current value) and ``incoming`` (from
        :func:`pack`): a sorted list of at most ``EXACT`` ids, else an encoded sketch."""
        if not isinstance(stored, str) and not isinstance(incoming, str):
            # Both lists, the stored one sorted: the few incoming ids are inserted in order,
            # which costs far less than a set of both, sorted again, on every batch.
            ids = list(stored) if stored else []
            for user in incoming:
                i = bisect_left(ids, user)
                if i == len(ids) or ids[i] != user:
                    ids.insert(i, user)
            if len(ids) <= EXACT:
                return ids
        cached = self._unions.pop(key, None)
        if cached is not None:
            self._bytes -= len(cached[0])
        if cached is not None and cached[0] is stored:
            union = cached[1]
        else:
            union = hll_union(LG_K)
            if isinstance(stored, str):
                union.update(decode(stored))
            elif stored:
                for user in stored:
                    union.update(user)
        if isinstance(incoming, str):
            union.update(decode(incoming))
        else:
            for user in incoming:
                union.update(user)
        text = encode(union.get_result(_STORED_TYPE))
        self._unions[key] = (text, union)
        self._bytes += len(text)
        while len(self._unions) > self.capacity or (
            self._bytes > self.budget_bytes and len(self._unions) > 1
        ):
            evicted, _ = self._unions.popitem(last=False)[1]
            self._bytes -= len(evicted)
        return text

    def __len__(self) -> int:
        return len(self._unions)

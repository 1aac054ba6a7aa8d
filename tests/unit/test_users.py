"""Unique users (pipeline.virality.users): HyperLogLog within 2 %, lossless unions."""

from __future__ import annotations

import random

import pytest

from pipeline.virality import users


@pytest.mark.parametrize("n", [10, 1_000, 50_000, 300_000])
def test_estimates_are_within_two_percent(n):
    rng = random.Random(n)
    ids = [f"user-{rng.getrandbits(64):x}" for _ in range(n)]
    estimate = users.decode(users.encode(users.sketch(ids))).get_estimate()
    assert estimate == pytest.approx(len(set(ids)), rel=0.02)


def test_unions_of_batches_equal_the_sketch_of_all_and_ignore_repeats():
    rng = random.Random(1)
    batches = [[f"u{rng.randrange(200_000)}" for _ in range(5_000)] for _ in range(40)]
    exact = len({u for i, b in enumerate(batches) for u in (b if i % 2 else b[:10])})
    unions = users.Unions(capacity=1)
    stored = None
    for i, batch in enumerate(batches):
        # Both wire forms: a sketch, or (for a few users) the ids themselves.
        incoming = users.pack(set(batch)) if i % 2 else users.pack(set(batch[:10]))
        stored = unions.merge("metoo", stored, incoming)
        stored = unions.merge("metoo", stored, incoming)  # a redelivered delta: no change
        unions.merge("other", None, incoming)  # evicts metoo's union: rebuilt from text
    assert users.estimate(stored) == pytest.approx(exact, rel=0.02)
    assert len(unions) == 1


def test_a_union_is_not_reused_when_the_stored_text_is_not_the_one_it_wrote():
    unions = users.Unions()
    a = users.encode(users.sketch(["a", "b"]))
    mine = unions.merge("t", None, a)
    # Another worker (after a rebalance) stored a sketch with other users under the same tag.
    theirs = users.encode(users.sketch(["x", "y", "z"]))
    merged = unions.merge("t", theirs, users.encode(users.sketch(["a"])))
    assert round(users.estimate(merged)) == 4  # x, y, z + a: not mine's b
    assert round(users.estimate(mine)) == 2


def test_no_users_no_estimate():
    assert users.estimate(None) == 0.0 and users.estimate("") == 0.0


def test_a_few_users_are_kept_exactly_as_a_sorted_list_then_as_a_sketch():
    unions = users.Unions()
    stored = None
    for batch in (["b", "a"], ["a", "c"]):  # a repeat counts once
        stored = unions.merge("t", stored, users.pack(set(batch)))
    assert stored == ["a", "b", "c"] and users.estimate(stored) == 3.0
    many = [f"u{i}" for i in range(users.EXACT)]
    stored = unions.merge("t", stored, users.pack(set(many[:10])))
    assert isinstance(stored, list)
    stored = unions.merge("t", stored, users.pack(set(many)))  # past EXACT: a sketch
    assert isinstance(stored, str)
    assert users.estimate(stored) == pytest.approx(users.EXACT + 3, abs=0.5)


def test_the_union_cache_keeps_to_its_byte_budget_and_stays_exact():
    rng = random.Random(3)
    unions = users.Unions(budget_bytes=20_000)
    stored: dict[str, object] = {}
    seen: dict[str, set[str]] = {}
    for _ in range(600):
        tag = f"t{rng.randrange(12)}"
        batch = {f"u{rng.randrange(3_000)}" for _ in range(rng.randrange(1, 40))}
        seen.setdefault(tag, set()).update(batch)
        stored[tag] = unions.merge(tag, stored.get(tag), users.pack(batch))
        assert unions._bytes == sum(len(text) for text, _ in unions._unions.values())
        assert unions._bytes <= 20_000 or len(unions) == 1
    assert 1 <= len(unions) < 12  # some were evicted, and rebuilt from their text when merged
    for tag, ids in seen.items():
        assert users.estimate(stored[tag]) == pytest.approx(len(ids), rel=0.02)


@pytest.mark.parametrize("stored", [None, [], ["b", "d"], [f"u{i:02}" for i in range(60)]])
def test_a_short_list_takes_new_ids_in_order_and_repeats_once(stored):
    before = list(stored) if stored is not None else None
    incoming = ["d", "a", "u05", "z", "a"]
    merged = users.Unions().merge("t", stored, incoming)
    assert merged == sorted(set(stored or []) | set(incoming))  # 63 at most: still a list
    assert stored == before  # the stored value is another's: not changed in place

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

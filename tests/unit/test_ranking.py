"""Ranking without visiting the long tail gives the same top K as scoring every tag."""

import random

from hypothesis import given
from hypothesis import strategies as st

from agents import ranking
from pipeline.virality.activity import RecentPosts, score_bound
from pipeline.virality.topk import select, top_active
from pipeline.virality.trend import CURRENT, trend_score

MINUTE = 60


@given(st.lists(st.integers(0, 500), min_size=0, max_size=130))
def test_no_trend_score_exceeds_the_bound_of_its_recent_posts(counts):
    assert trend_score(counts) <= score_bound(sum(counts[:CURRENT])) + 1e-9


def test_recent_posts_counts_the_newest_span_and_forgets_older_minutes():
    recent = RecentPosts(span_minutes=3)
    recent.add("a", 0, 2)
    recent.add("b", 60, 1)
    recent.add("a", 120, 5)
    assert (recent.posts("a"), recent.posts("b")) == (7, 1)
    assert [(n, sorted(t)) for n, t in recent.groups()] == [(7, ["a"]), (1, ["b"])]
    recent.add("c", 180, 1)  # minute 0 leaves the span
    assert (recent.posts("a"), recent.posts("b"), recent.posts("c")) == (5, 1, 1)
    assert [(n, sorted(t)) for n, t in recent.groups()] == [(5, ["a"]), (1, ["b", "c"])]
    recent.add("b", 0, 9)  # older than the span: ignored
    assert recent.posts("b") == 1
    recent.add("a", 60 * 100, 1)
    assert len(recent) == 1 and recent.posts("a") == 1 and recent.posts("b") == 0
    recent.clear()
    assert len(recent) == 0 and list(recent.groups()) == []


adds = st.lists(
    st.tuples(
        st.sampled_from("abcd"), st.integers(0, 12).map(lambda m: m * MINUTE), st.integers(1, 5)
    )
)


@given(st.lists(adds, max_size=4))
def test_add_many_leaves_what_the_same_adds_one_by_one_leave(batches):
    one_by_one, at_once = RecentPosts(span_minutes=3), RecentPosts(span_minutes=3)
    for batch in batches:
        posts_at: dict[int, dict[str, int]] = {}
        for tag, minute, posts in batch:
            one_by_one.add(tag, minute, posts)
            at = posts_at.setdefault(minute, {})
            at[tag] = at.get(tag, 0) + posts
        at_once.add_many(posts_at)
        assert at_once.newest == one_by_one.newest
        assert {t: at_once.posts(t) for t in "abcd"} == {t: one_by_one.posts(t) for t in "abcd"}
        groups = [(n, sorted(tags)) for n, tags in one_by_one.groups()]
        assert [(n, sorted(tags)) for n, tags in at_once.groups()] == groups
        assert len(at_once) == len(one_by_one)


def _world(seed: int, tags: int = 400, minutes: int = 130):
    """Random per-minute counts: a long tail, some steady tags, some jumping, some fading."""
    rng = random.Random(seed)
    history: dict[str, list[int]] = {}  # newest first
    for i in range(tags):
        kind = rng.random()
        base = rng.choice([0, 0, 0, 1, 2, 5, 40])
        counts = []
        for m in range(minutes):  # m = 0 is the newest minute
            rate = base
            if kind < 0.1 and m < 10:
                rate = base * 20 + 3
            elif kind < 0.2 and m < 30:
                rate = 0
            counts.append(rng.randint(0, 2 * rate) if rate else int(rng.random() < 0.02))
        history[f"t{i:03d}"] = counts
    return history


def test_top_active_equals_scoring_every_tag():
    for seed in range(20):
        history = _world(seed)
        totals = {tag: sum(c) + 1000 for tag, c in history.items()}
        recent = RecentPosts()
        newest = 129 * MINUTE
        for tag, counts in history.items():
            for age, n in enumerate(counts):
                recent.add(tag, newest - age * MINUTE, n)
        active = {tag for tag, c in history.items() if any(c[: 2 * CURRENT])}
        assert set(recent._posts) == active
        for k in (1, 5, 50):
            scored_every = [(t, trend_score(history[t]), totals[t]) for t in active]
            expect = select(scored_every, k)
            calls = []

            def score(tag, calls=calls, history=history, totals=totals):
                calls.append(tag)
                return trend_score(history[tag]), totals[tag]

            chosen, scored, exact = top_active(recent.groups(), score, k, budget=10_000)
            assert exact and set(chosen) == expect, (seed, k)
            assert scored == len(calls) < len(active)  # the tail was not scored


def test_top_active_skips_tags_that_are_not_candidates_and_stops_at_its_budget():
    recent = RecentPosts()
    for i in range(100):
        recent.add(f"t{i:02d}", 0, 1)
    recent.add("big", 0, 50)
    recent.add("gone", 0, 60)

    def score(tag):
        return None if tag == "gone" else (trend_score([recent.posts(tag)]), 1)

    chosen, scored, exact = top_active(recent.groups(), score, 3, budget=10)
    assert not exact and scored == 10  # "gone" is not scored: no place in the budget
    assert chosen[0] == "big" and len(chosen) == 3  # then any two of the 100 equal ones
    chosen, scored, exact = top_active(recent.groups(), score, 3, budget=1000)
    assert exact and scored == 101 and chosen == ["big", "t00", "t01"]


def test_a_long_ranking_waits_in_proportion_before_the_next(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(ranking.time, "monotonic", lambda: clock[0])

    class Timed(ranking.Ranking):
        took = 0.0

        def _rank(self, owned, watermark):
            clock[0] += self.took
            return ["metoo"]

    r = Timed(counters=None, k=1)
    assert r.due()  # nothing chosen yet
    r.took = 0.45
    r.refresh(frozenset(), 0.0)
    clock[0] += 0.45 / ranking.SHARE - 0.45 - 0.01
    assert not r.due()  # it would take more than SHARE of the time since the last began
    clock[0] += 0.02
    assert r.due()
    r.took = 0.01
    r.refresh(frozenset(), 0.0)
    clock[0] += ranking.INTERVAL
    assert r.due()  # a quick ranking leaves the timer's interval in charge
    r.clear()
    clock[0] -= 1e6
    assert r.due()  # cleared: chosen again at once, whatever the clock

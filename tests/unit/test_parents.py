"""Learning the generation interval from parent links (pipeline.virality.parents)."""

from __future__ import annotations

import random

import pytest

from pipeline.settings import SettingsError
from pipeline.virality.parents import ParentClock, configured_weights


def test_children_of_sampled_parents_give_their_lag_in_minute_buckets():
    clock = ParentClock(suffix="")
    clock.observe("p", 59.0, None)  # bucket 0
    clock.observe("c1", 61.0, "p")  # bucket 1: lag 1, though only 2 s later
    clock.observe("c2", 59.5, "p")  # same bucket: lag 0
    clock.observe("c3", 60 * 30 + 5, "p")  # lag 30
    clock.observe("orphan", 100.0, "never-seen")
    assert clock.interval.counts[:2] == [1, 1] and clock.interval.counts[30] == 1
    assert clock.interval.samples == 3


def test_only_a_deterministic_sample_of_ids_is_remembered():
    clock = ParentClock()
    ids = [f"id-{i}" for i in range(16_000)]
    for i, event_id in enumerate(ids):
        clock.observe(event_id, float(i), None)
    assert len(clock) == 1_600  # the ids ending in 0


def test_ids_older_than_the_horizon_are_forgotten():
    clock = ParentClock(suffix="", horizon_seconds=3600)
    for i in range(10_000):  # one event a second for ~2.8 h
        clock.observe(f"e{i}", float(i), None)
    assert len(clock) <= 3600 + 4096 + 60  # the horizon, plus at most one sweep's worth
    clock.observe("late-child", 10_000.0, "e0")  # its parent is forgotten: no lag
    assert clock.interval.samples == 0


def test_an_id_seen_again_later_is_kept_until_its_newer_time_expires():
    clock = ParentClock(suffix="", horizon_seconds=3600)
    clock.observe("again", 0.0, None)
    for i in range(1, 5000):
        clock.observe(f"e{i}", float(i), None)
    clock.observe("again", 5000.0, None)  # a redelivered event, say, at its own newer time
    for i in range(5001, 12_000):  # its first insertion expires in these sweeps
        clock.observe(f"e{i}", float(i), None)
    clock.observe("child", 12_000.0, "again")
    assert clock.interval.samples == 1
    assert clock.interval.counts[(12_000 // 60) - (5000 // 60)] == 1


def test_memory_stays_bounded_over_a_long_stream():
    clock = ParentClock(suffix="", horizon_seconds=600)
    for i in range(200_000):  # 55 hours at one event a second
        clock.observe(f"e{i}", float(i), None)
    assert len(clock) <= 600 + 4096 + 60
    assert len(clock._order) <= 600 + 4096 + 60  # the expiry queue too


def test_learned_mean_matches_simulated_delays():
    rng = random.Random(7)
    clock = ParentClock()
    t = 0.0
    for i in range(20_000):
        t += rng.expovariate(1 / 3)
        clock.observe(f"p{i}", t, None)
        clock.observe(f"c{i}", t + rng.gammavariate(2.78, 30 * 60 / 2.78), f"p{i}")
    assert clock.interval.learned
    assert clock.interval.mean_minutes == pytest.approx(30, rel=0.05)


def test_configured_interval_specs():
    assert configured_weights("learned") is None
    weights = configured_weights("gamma:30:0.6")
    assert weights is not None and sum(weights) == pytest.approx(1)
    assert configured_weights("lognormal:45:1.0") is not None
    for bad in ("gamma", "gamma:30", "weibull:30:0.6", "gamma:0:0.6", "gamma:30:-1", "x:y:z"):
        with pytest.raises(SettingsError, match="--generation-interval"):
            configured_weights(bad)

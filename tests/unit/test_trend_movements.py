"""Trend score (pipeline.virality.trend) and movements (pipeline.virality.movements)."""

from __future__ import annotations

import math
import random

import orjson
import pytest

from pipeline.aggregate import summarise
from pipeline.settings import SettingsError
from pipeline.virality import movements
from pipeline.virality.trend import CURRENT, baseline, trend_score


def test_a_steady_tag_scores_zero_whatever_its_size():
    assert trend_score([5] * 120) == 0.0
    assert trend_score([5000] * 120) == 0.0


def test_a_small_tag_jumping_fifty_fold_outranks_a_big_tag_rising_ten_percent():
    small = trend_score([50] * CURRENT + [1] * (120 - CURRENT))
    big = trend_score([1100] * CURRENT + [1000] * (120 - CURRENT))
    assert small > 100 > big > 10


def test_a_fading_tag_scores_below_zero():
    assert trend_score([10] * CURRENT + [100] * (120 - CURRENT)) < -10


def test_a_brand_new_tag_scores_its_rate_times_root_fifteen():
    assert trend_score([10] * CURRENT) == pytest.approx(10 * math.sqrt(CURRENT))
    assert trend_score([]) == 0.0


def test_the_baseline_is_an_exponentially_weighted_mean_and_variance():
    rng = random.Random(4)
    counts = [rng.randrange(50) for _ in range(120)]
    weights = [0.5 ** (j / 30) for j in range(120 - CURRENT)]
    older = counts[CURRENT:]
    mean = sum(w * n for w, n in zip(weights, older, strict=True)) / sum(weights)
    var = sum(w * (n - mean) ** 2 for w, n in zip(weights, older, strict=True)) / sum(weights)
    assert baseline(counts) == pytest.approx((mean, var))
    # Recent baseline minutes weigh more: a burst just before the current window raises μ
    # more than the same burst an hour earlier.
    recent = [0] * CURRENT + [30] * 10 + [0] * 95
    early = [0] * CURRENT + [0] * 60 + [30] * 10 + [0] * 35
    assert baseline(recent)[0] > baseline(early)[0]


def line(**event) -> bytes:
    return orjson.dumps({"id": "1", "ts": 60.0, "region": "FR", **event})


def test_an_event_counts_once_for_its_movement_whatever_the_variants_it_carries():
    index = movements.index(movements.DEFAULT)
    record = b"\n".join(
        [
            line(hashtags=["#MeToo", "#MoiAussi", "BalanceTonPorc"]),
            line(id="2", ts=130.0, region="ES", hashtags=["YoTambien", "otra"]),
            line(id="3", hashtags=["unrelated"]),
        ]
    )
    s = summarise(record, envelope=True, movements=index)
    assert s.tags["#metoo"][:4] == [
        2,
        {"FR": 1, "ES": 1},
        {"0": {"60": [1, 0, {"FR": 1}], "120": [1, 0, {"ES": 1}]}},
        {"FR": 60.0, "ES": 130.0},
    ]
    assert s.tags["metoo"][0] == s.tags["moiaussi"][0] == s.tags["yotambien"][0] == 1
    # Without movements, nothing but hashtags.
    assert not any(movements.is_key(t) for t in summarise(record, envelope=True).tags)


def test_movement_keys_cannot_collide_with_a_hashtag():
    s = summarise(line(hashtags=["#metoo", "##metoo"]), movements={"metoo": "#metoo"})
    assert set(s.tags) == {"metoo", "#metoo"} and s.tags["#metoo"][0] == 1


def test_parse_movement_specs():
    assert movements.parse(["equal=EqualPay, #equalpay ,EQUALPAYDAY"]) == {
        "equal": ("equalpay", "equalpayday")
    }
    for bad in ("nameonly", "=a,b", "x=", "bad name=a", 'q"=a'):
        with pytest.raises(SettingsError, match="--movement"):
            movements.parse([bad])

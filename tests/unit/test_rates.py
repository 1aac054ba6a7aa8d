import math

from pipeline.virality.rates import (
    LONGEST,
    doubling_time_seconds,
    growth_ratio,
    posts_per_minute,
    window_minutes,
    window_rates,
)


def test_window_ends_with_the_watermark_bucket():
    assert list(window_minutes(179.9, 3)) == [0, 60, 120]
    assert list(window_minutes(180.0, 1)) == [180]


def test_posts_per_minute():
    counts = {0: 6, 60: 3, 120: 9, 180: 12}
    at = counts.get
    assert posts_per_minute(lambda m: at(m, 0), 190.0, 1) == 12
    assert posts_per_minute(lambda m: at(m, 0), 190.0, 2) == (9 + 12) / 2
    assert posts_per_minute(lambda m: at(m, 0), 190.0, 60) == 30 / 60


def test_window_rates_match_posts_per_minute():
    counts = {m * 60: (m * 7) % 13 for m in range(200)}
    watermark = 150 * 60 + 30.0
    newest_first = [counts.get(m, 0) for m in reversed(window_minutes(watermark, LONGEST))]
    rates = window_rates(newest_first)
    for label, w in {"1m": 1, "15m": 15, "1h": 60}.items():
        assert rates[label] == posts_per_minute(lambda m: counts.get(m, 0), watermark, w)


def test_growth_ratio_is_last_hour_over_the_hour_before():
    assert growth_ratio([2] * 60 + [1] * 60) == 2.0
    assert growth_ratio([0] * 60 + [4] * 60) == 0.0
    assert growth_ratio([5] * 60 + [0] * 60) is None  # nothing before: no ratio
    assert growth_ratio([1] * 200) == 1.0  # only the newest 120 buckets count


def test_doubling_time_from_the_hourly_growth():
    assert doubling_time_seconds(2.0) == 3600  # doubles every hour
    assert doubling_time_seconds(4.0) == 1800
    assert doubling_time_seconds(1.0) == math.inf and doubling_time_seconds(0.5) == math.inf
    assert doubling_time_seconds(None) is None


def test_region_rates_over_15_and_60_buckets_without_empty_regions():
    from pipeline.virality.rates import region_rates

    newest_first = [{"FR": 3}] * 10 + [{"US": 6}] * 10 + [{"FR": 1}] * 100
    assert region_rates(newest_first) == {
        "15m": {"FR": 30 / 15, "US": 30 / 15},
        "1h": {"FR": (30 + 40) / 60, "US": 60 / 60},
    }
    assert region_rates([{"EG": 6}]) == {"15m": {"EG": 6 / 15}, "1h": {"EG": 6 / 60}}
    assert region_rates([]) == {"15m": {}, "1h": {}}

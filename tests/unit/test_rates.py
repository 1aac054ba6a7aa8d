from pipeline.virality.rates import posts_per_minute, window_minutes


def test_window_ends_with_the_watermark_bucket():
    assert list(window_minutes(179.9, 3)) == [0, 60, 120]
    assert list(window_minutes(180.0, 1)) == [180]


def test_posts_per_minute():
    counts = {0: 6, 60: 3, 120: 9, 180: 12}
    at = counts.get
    assert posts_per_minute(lambda m: at(m, 0), 190.0, 1) == 12
    assert posts_per_minute(lambda m: at(m, 0), 190.0, 2) == (9 + 12) / 2
    assert posts_per_minute(lambda m: at(m, 0), 190.0, 60) == 30 / 60

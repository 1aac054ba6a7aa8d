"""The demo's running commentary: one line from a scrape, largest hashtags first."""

from pipeline.demo import headline


def test_headline_names_event_time_and_the_largest_hashtags_with_their_regions():
    metrics = {
        "spread_watermark_timestamp_seconds": [({}, 1508106060.0)],
        "hashtag_posts_total": [
            ({"hashtag": "metoo"}, 1234.0),
            ({"hashtag": "balancetonporc"}, 56.0),
            ({"hashtag": "weinstein"}, 78.0),
        ],
        "hashtag_regions_reached": [({"hashtag": "metoo"}, 31.0), ({"hashtag": "weinstein"}, 2.0)],
    }
    assert headline(metrics, n=2) == (
        "Sun 15 Oct 2017 22:21 UTC  #metoo 1,234 in 31 regions · #weinstein 78 in 2 regions"
    )


def test_no_headline_before_anything_was_counted():
    assert headline({"spread_watermark_timestamp_seconds": [({}, 0.0)]}) is None
    assert headline({}) is None

"""spread top's merge, ranking and rendering (pipeline.top), from exposition text."""

from rich.console import Console

from pipeline.top import lines, merge, ranked, table

W1 = """\
hashtag_posts_total{hashtag="metoo"} 900
hashtag_posts_per_minute{hashtag="metoo",window="15m"} 30
hashtag_trend_score{hashtag="metoo"} 0.5
hashtag_reproduction_number{hashtag="metoo"} 1.25
hashtag_unique_users{hashtag="metoo"} 700.2
hashtag_regions_reached{hashtag="metoo"} 2
hashtag_region_posts_total{hashtag="metoo",region="US"} 800
hashtag_region_posts_total{hashtag="metoo",region="FR"} 100
"""
W2 = """\
hashtag_posts_total{hashtag="balancetonporc"} 120
hashtag_posts_per_minute{hashtag="balancetonporc",window="15m"} 12
hashtag_trend_score{hashtag="balancetonporc"} 40
hashtag_region_posts_total{hashtag="balancetonporc",region="FR"} 120
hashtag_posts_total{hashtag="metoo"} 850
movement_hashtag_info{movement="metoo",hashtag="moiaussi"} 1
"""


def test_merge_keeps_one_row_per_hashtag_the_larger_total_winning():
    trends = merge([W1, W2])
    assert set(trends) == {"metoo", "balancetonporc"}
    assert trends["metoo"].posts == 900 and trends["metoo"].rt == 1.25  # not W2's stale 850


def test_rankings():
    trends = merge([W1, W2])
    assert [t.hashtag for t in ranked(trends, "15m", 5)] == ["balancetonporc", "metoo"]
    assert [t.hashtag for t in ranked(trends, "15m", 5, by="rate")] == ["metoo", "balancetonporc"]
    assert [t.hashtag for t in ranked(trends, "15m", 1, by="posts")] == ["metoo"]
    assert [t.hashtag for t in ranked(trends, "15m", 5, region="FR")] == ["balancetonporc", "metoo"]
    assert [t.hashtag for t in ranked(trends, "15m", 5, region="US")] == ["metoo"]


def test_plain_and_rich_renderings_show_the_same_cells():
    rows = ranked(merge([W1, W2]), "15m", 5)
    text = lines(rows, "15m")
    assert text[0].split() == [
        "hashtag",
        "/min",
        "15m",
        "posts",
        "growth",
        "R_t",
        "trend",
        "regions",
        "users",
    ]
    assert text[2].split() == ["metoo", "30.00", "900", "-", "1.25", "0.5", "2", "700"]
    console = Console(width=200, record=True)
    console.print(table(rows, "15m", None, "title"))
    rendered = console.export_text()
    assert "balancetonporc" in rendered and "1.25" in rendered and "R_t" in rendered

import pytest

from pipeline import hashtags, regions


@pytest.mark.parametrize("raw", ["#MeToo", "METOO", "ＭｅＴｏｏ", "＃MeToo", "metoo", "##MeToo"])
def test_spellings_of_metoo_are_one_hashtag(raw):
    assert hashtags.normalise(raw) == "metoo"


def test_arabic_keeps_its_letters():
    assert hashtags.normalise("#وأنا_كمان") == "وأنا_كمان"
    assert hashtags.normalise("وانا_ايضا") == "وانا_ايضا"


def test_nfkc_then_casefold():
    # NFKC folds the ligature and full-width forms; casefold maps ß to ss.
    assert hashtags.normalise("#Straße") == "strasse"
    assert hashtags.normalise("ﬁre") == "fire"


def test_only_leading_hash_removed():
    assert hashtags.normalise("#c#") == "c#"


def test_distinct_counts_a_tag_once_and_drops_empty():
    assert hashtags.distinct(["#MeToo", "metoo", "#", "", "YoTambien"]) == ["metoo", "yotambien"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("US", "US"),
        ("fr", "FR"),
        (" EG ", "EG"),
        ("XX", "ZZ"),
        ("", "ZZ"),
        (None, "ZZ"),
        (42, "ZZ"),
        ("USA", "ZZ"),
        ("ZZ", "ZZ"),
    ],
)
def test_region_codes(raw, expected):
    assert regions.normalise(raw) == expected

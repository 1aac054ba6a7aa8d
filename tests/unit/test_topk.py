from pipeline.hashtags import normalise
from pipeline.virality.movements import DEFAULT
from pipeline.virality.topk import select


def test_top_k_by_score_then_total_then_name_plus_always():
    candidates = [("a", 5.0, 10), ("b", 9.0, 1), ("c", 5.0, 30), ("d", 0.0, 999), ("e", 5.0, 10)]
    assert select(candidates, 2) == {"b", "c"}
    assert select(candidates, 3) == {"b", "c", "a"}  # a and e tie on score and total: by name
    assert select(candidates, 1, always={"d", "zz"}) == {"b", "d"}  # only tags that exist
    assert select(candidates, 0) == {"a", "b", "c", "d", "e"}  # no cap


def test_movement_tags_are_normalised():
    assert all(normalise(tag) == tag for tag in DEFAULT["metoo"])

import math

import orjson
import pytest

from pipeline.events import split_record, validate

GOOD = {"id": "t-1", "ts": 1508106060.5, "hashtags": ["MeToo"]}


def test_good_event_is_accepted():
    assert validate(GOOD) is None
    assert validate({**GOOD, "ts": 1508106060}) is None  # integers are numbers too


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ([1, 2], "not_object"),
        ("text", "not_object"),
        ({"ts": 1.0}, "bad_id"),
        ({**GOOD, "id": 7}, "bad_id"),
        ({"id": "x"}, "bad_ts"),
        ({**GOOD, "ts": "1508106060"}, "bad_ts"),
        ({**GOOD, "ts": True}, "bad_ts"),
        ({**GOOD, "ts": math.nan}, "bad_ts"),
        ({**GOOD, "ts": math.inf}, "bad_ts"),
        ({**GOOD, "hashtags": "MeToo"}, "bad_hashtags"),
        ({**GOOD, "hashtags": ["MeToo", 3]}, "bad_hashtags"),
        ({**GOOD, "hashtags": {"a": 1}}, "bad_hashtags"),
    ],
)
def test_invalid_events_have_a_reason(event, reason):
    assert validate(event) == reason


def test_missing_or_null_hashtags_is_a_post_without_tags():
    assert validate({"id": "a", "ts": 1}) is None
    assert validate({"id": "a", "ts": 1, "hashtags": None}) is None


def test_split_single_event_and_envelope():
    one = orjson.dumps(GOOD)
    assert split_record(one) == [one]
    assert split_record(one + b"\n\n" + one + b"\n") == [one, one]
    assert split_record(b"") == []
    assert split_record(None) == []


def test_pretty_printed_foreign_record_is_one_event():
    pretty = orjson.dumps(GOOD, option=orjson.OPT_INDENT_2)
    assert split_record(pretty) == [pretty]


def test_marked_envelope_judges_every_line_even_if_they_join_into_json():
    value = b'{"id": "x", "ts": 1,\n"hashtags": []}'
    assert len(split_record(value)) == 1  # unmarked: one pretty-printed object
    assert len(split_record(value, envelope=True)) == 2  # marked JSON lines: two broken lines

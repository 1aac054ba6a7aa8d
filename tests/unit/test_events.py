import math

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.events import Event, decode_lines, judge, split_record, validate

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


# What a line's fields may hold: the valid shapes and the ones judge() rejects or reads as
# absent, written out as raw JSON text so numbers can be out of a double's range.
_TEXT = st.text(max_size=6).map(lambda s: orjson.dumps(s).decode())
_VALUES = st.one_of(
    _TEXT,
    st.sampled_from(
        ["null", "true", "1", "-0", "0.5", "1e308", "1e309", "-1e400", "2e-400", "1E3", "[]", "{}",
         '["a"]', '["a", 1]', '[["a"]]', '{"a": "b"}', "18446744073709551616", "1" * 400,
         '"\\ud800"', '"\\ud83d\\ude00"', '"a\\u0000"', '"a<FF>"', '"\ud800"', "NaN"]
    ),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers().map(str),
)  # fmt: skip
_KEYS = st.sampled_from(
    ["id", "ts", "hashtags", "user", "region", "parent", "platform", "kind", "lang", "extra",
     "\\u0069d", "Id"]
)  # fmt: skip


@st.composite
def _lines(draw: st.DrawFn) -> bytes:
    fields = [("id", _TEXT), ("ts", st.floats(0, 2e9).map(repr))]
    fields += [(k, st.lists(_TEXT, max_size=3).map(lambda t: "[" + ",".join(t) + "]"))
               for k in ["hashtags"]]  # fmt: skip
    pairs = [(k, draw(v)) for k, v in fields if draw(st.integers(0, 9))]  # usually present
    pairs += draw(st.lists(st.tuples(_KEYS, _VALUES), max_size=4))
    pairs = draw(st.permutations(pairs))
    # Raw bytes that are not UTF-8: a lone surrogate encoded as such, and <FF> as 0xff.
    line = ("{" + ",".join(f'"{k}":{v}' for k, v in pairs) + "}").encode("utf-8", "surrogatepass")
    line = line.replace(b"<FF>", b"\xff")
    if draw(st.booleans()):  # a byte mangled: a truncation, a stray character, a bad byte
        i = draw(st.integers(0, len(line)))
        line = line[:i] + draw(st.sampled_from([b"", b",", b"}", b"\xff", b"\x0c", b" ", b"e9"]))
    return line


@settings(max_examples=1500, deadline=None)
@given(st.lists(_lines(), min_size=1, max_size=4))
def test_fast_decoding_gives_the_reference_judgement(lines):
    """msgspec's decoding into Event must agree with orjson + validate on every line, in an
    envelope of good lines (decoded in one pass) or beside bad ones (each on its own)."""
    assert decode_lines(lines, 65_536) == [judge(line) for line in lines]


def test_fast_decoding_leaves_nothing_orjson_refuses():
    # msgspec skips an unknown field's value without checking it; these must still be
    # invalid_json, as orjson says, not accepted events.
    for extra in (b'"\xff"', b"1e400", b'"\xed\xa0\x80"', b"[" * 1100 + b"]" * 1100):
        line = b'{"id":"a","ts":1,"extra":' + extra + b"}"
        assert decode_lines([line], 65_536) == ["invalid_json"]
    assert decode_lines([b'{"id":"a","ts":' + b"1" * 400 + b"}"], 65_536) == ["invalid_json"]


def test_decoded_event_reads_non_text_optional_fields_as_absent():
    line = b'{"id":"a","ts":5,"user":7,"region":["US"],"parent":"","hashtags":null}'
    [event] = decode_lines([line], 65_536)
    assert event == Event("a", 5.0, None, user=None, region=None, parent="")
    assert decode_lines([line, b"x" * 10], 8) == ["too_large", "too_large"]

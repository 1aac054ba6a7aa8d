"""Hostile and broken input, fuzzed: the pipeline's verdict on every line equals the
independent ground truth's (tests/groundtruth.py), and nothing raises.

Lines are built from events with wrong types in every field, hostile Unicode in hashtags
(controls, bidirectional overrides, zero-width characters, NFKC expansions), out-of-range
timestamps, oversized lists and lines, and raw bytes that are not JSON or not UTF-8.
"""

from __future__ import annotations

import json

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.aggregate import summarise
from pipeline.events import REASONS
from pipeline.limits import DEFAULT_LIMITS
from tests.groundtruth import judge, norm_tag

NOW = 1_800_000_000.0
HOSTILE_CHARS = st.sampled_from(
    [
        *"#＃ aZ",
        *["\u200b", "\u200c", "\u200d", "\u202e", "\u2066", "\x00", "\x1b", "\ufeff"],
        *["ﷺ", "ﬀ", "Ⅻ", "ß", "İ", "\u0301", "و", "أ", "\u061c", "\n", "\u3000"],
    ]
)
TAG = st.one_of(st.text(HOSTILE_CHARS, max_size=12), st.text(max_size=8), st.just("x" * 141))
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
TS = st.one_of(
    st.floats(min_value=0, max_value=NOW + 2 * DEFAULT_LIMITS.max_future_seconds),
    st.floats(allow_nan=False),
    st.integers(min_value=-(2**40), max_value=2**40),
    ANY_JSON,
)
HASHTAGS = st.one_of(
    st.lists(TAG, max_size=6),
    st.lists(TAG, min_size=99, max_size=102),
    st.lists(st.one_of(TAG, ANY_JSON), max_size=3),
    ANY_JSON,
)


@st.composite
def events(draw) -> bytes:
    """Mostly well-formed events with one or two things wrong, so every reason is reached."""
    event = {}
    pick = draw(st.integers(0, 9))
    if pick < 9:
        event["id"] = draw(st.text(max_size=6)) if pick < 8 else draw(ANY_JSON)
    pick = draw(st.integers(0, 9))
    if pick < 9:
        ok = st.floats(min_value=0, max_value=NOW + 2 * DEFAULT_LIMITS.max_future_seconds)
        event["ts"] = draw(ok if pick < 6 else TS)
    pick = draw(st.integers(0, 9))
    if pick < 6:
        event["hashtags"] = draw(st.lists(TAG, max_size=6))
    elif pick == 6:
        event["hashtags"] = draw(st.lists(TAG, min_size=99, max_size=102))
    elif pick < 9:
        event["hashtags"] = draw(HASHTAGS)
    if draw(st.booleans()):
        event["region"] = draw(st.one_of(st.sampled_from(["us", " FR ", "XX", ""]), ANY_JSON))
    if draw(st.integers(0, 19)) == 0:
        event["pad"] = "p" * (DEFAULT_LIMITS.max_event_bytes + draw(st.integers(-200, 200)))
    line = json.dumps(event, ensure_ascii=draw(st.booleans()))
    return line.encode("utf-8", "surrogatepass")


LINES = st.one_of(
    events(), st.binary(min_size=1, max_size=64), ANY_JSON.map(lambda v: json.dumps(v).encode())
)


def verdict_of_pipeline(line: bytes):
    s = summarise(line, envelope=True, now=NOW)
    assert s.accepted + len(s.rejected) == 1
    if s.rejected:
        reason, kept = s.rejected[0]
        assert reason in REASONS
        assert kept == line[: DEFAULT_LIMITS.max_event_bytes]
        return reason, None
    return None, set(s.tags)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(LINES)
def test_pipeline_and_ground_truth_agree_on_every_line(line: bytes):
    if not line.strip() or b"\n" in line:
        return  # blank lines are not events; newlines split envelopes (tested elsewhere)
    reason, tags = verdict_of_pipeline(line)
    expected_reason, event = judge(line, now=NOW)
    assert reason == expected_reason, line[:200]
    if event is not None:
        expected = {norm_tag(t) for t in event.get("hashtags") or []} - {""}
        assert tags == expected


def test_an_envelope_of_hostile_lines_counts_the_valid_ones_exactly():
    good = [
        orjson.dumps({"id": str(i), "ts": 1508200000 + i, "hashtags": ["MeToo"]}) for i in range(5)
    ]
    bad = [
        b"\xff\xfe",
        b"[" * 5000 + b"]" * 5000,
        orjson.dumps({"id": "x", "ts": 1508200000, "hashtags": ["t"] * 100_000}),
        orjson.dumps({"id": "y", "ts": 1508200000, "hashtags": ["a" * 10_000]}),
        orjson.dumps({"id": "z", "ts": 1e300, "hashtags": ["metoo"]}),
    ]
    record = b"\n".join(x for pair in zip(good, bad, strict=True) for x in pair)
    s = summarise(record, envelope=True, now=NOW)
    assert s.accepted == 5 and s.tags["metoo"][0] == 5
    assert [r for r, _ in s.rejected] == [
        "invalid_json",
        "invalid_json",
        "too_large",
        "hashtag_too_long",
        "ts_out_of_range",
    ]

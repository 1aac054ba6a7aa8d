import json
import math

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.replay import envelopes, event_time


def test_event_time_ignores_what_the_worker_would_reject():
    assert event_time(b'{"id": "a", "ts": 1508200000.5}') == 1508200000.5
    assert event_time(b'{"id": "a", "ts": 1e12}') is None  # far future
    assert event_time(b'{"id": "a", "ts": -1}') is None
    assert event_time(b'{"id": "a", "ts": 100}', latest=50) is None
    assert event_time(b"not json") is None
    assert event_time(b'{"ts": true}') is None


def test_an_outlier_does_not_move_an_envelope_time():
    lines = [b'{"id": "a", "ts": 10}', b'{"id": "b", "ts": 1e12}', b'{"id": "c", "ts": 20}']
    (env,) = envelopes(iter(lines), size=10, speed=None)
    assert env.ts == 20 and env.lines == lines


def reference_time(line: bytes, latest: float) -> float | None:
    """What event_time answered when it parsed the whole line with orjson."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    ts = obj.get("ts") if type(obj) is dict else None
    if type(ts) in (int, float) and math.isfinite(ts) and 0 <= ts <= latest:
        return float(ts)
    return None


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.floats(0, 3e9)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)


@settings(max_examples=400, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["ts", "id", "hashtags", "x"]), json_values, max_size=4)
    | json_values,
    st.sampled_from([b"", b"\n", b" ", b"}", b"x"]),
)
def test_event_time_agrees_with_a_whole_parse_wherever_that_parses(obj, tail):
    # Any JSON (objects with a ts of every type, arrays, scalars), then trailing bytes. Where
    # orjson rejects a line only event_time's own docstring applies (it may still time it).
    line = json.dumps(obj).encode() + tail  # stdlib: ints of any size, NaN
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return
    assert event_time(line, latest=2e9) == reference_time(line, 2e9)


def test_event_time_of_huge_and_odd_numbers():
    assert event_time(b'{"ts": ' + b"9" * 400 + b"}") is None  # an int beyond any float
    assert event_time(b'{"ts": 1e400}') is None
    assert event_time(b'{"ts": 12}', latest=50) == 12.0
    assert event_time(b'[{"ts": 12}]', latest=50) is None
    assert event_time(b'{"x": "\xff", "ts": 12}', latest=50) == 12.0  # broken elsewhere: timed

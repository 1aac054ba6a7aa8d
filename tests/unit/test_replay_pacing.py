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

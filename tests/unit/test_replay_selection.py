"""What replay sends: files merged in event time, disorder repaired or reported, filters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pipeline.analyze import analyze
from pipeline.replay import ReplayStats, Selection, selected
from tests.groundtruth import compute, lines_of, norm_tag

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample-metoo-2017.jsonl"


def ts_of(line: bytes) -> float | None:
    try:
        ts = json.loads(line)["ts"]
    except (ValueError, KeyError, TypeError):
        return None
    return ts if isinstance(ts, int | float) and not isinstance(ts, bool) else None


def test_a_disordered_file_comes_out_sorted_and_whole():
    stats = ReplayStats()
    out = [line for _, line in selected([SAMPLE], stats, Selection())]
    assert sorted(out) == sorted(lines_of([SAMPLE]))
    times = [t for t in map(ts_of, out) if t is not None]
    assert times == sorted(times) and stats.out_of_order == 0


def test_disorder_past_a_small_buffer_is_counted_not_lost():
    stats = ReplayStats()
    out = [line for _, line in selected([SAMPLE], stats, Selection(buffer=10))]
    assert sorted(out) == sorted(lines_of([SAMPLE])) and stats.out_of_order > 0
    sorted_ = [line for _, line in selected([SAMPLE], ReplayStats(), Selection(sort=True))]
    assert sorted(sorted_) == sorted(out)


def test_two_files_merge_in_event_time(tmp_path):
    lines = lines_of([SAMPLE])
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_bytes(b"\n".join(lines[::2]))
    b.write_bytes(b"\n".join(lines[1::2]))
    out = [line for _, line in selected([a, b], ReplayStats(), Selection())]
    assert sorted(out) == sorted(lines)
    times = [t for t in map(ts_of, out) if t is not None]
    assert times == sorted(times)


def test_filters_by_time_hashtag_and_limit():
    since, until = 1508097600.0, 1508112000.0  # 20:00 to 00:00 UTC
    stats = ReplayStats()
    sel = Selection(since=since, until=until, hashtags=frozenset({"metoo"}))
    out = [line for _, line in selected([SAMPLE], stats, sel)]
    expected = []
    for line in lines_of([SAMPLE]):
        t = ts_of(line)
        try:
            tags = {norm_tag(x) for x in json.loads(line).get("hashtags") or []}
        except (ValueError, AttributeError, TypeError):
            tags = set()
        if t is not None and since <= t < until and "metoo" in tags:
            expected.append(line)
    assert sorted(out) == sorted(expected) and 0 < len(out) < len(lines_of([SAMPLE]))
    assert stats.filtered == len(lines_of([SAMPLE])) - len(out)
    limited = list(selected([SAMPLE], ReplayStats(), Selection(limit=7)))
    assert len(limited) == 7


def test_dry_run_agrees_with_the_ground_truth():
    truth = compute([SAMPLE])
    run = analyze([SAMPLE], Selection())
    assert run.accepted == truth.accepted
    assert dict(run.rejected) == dict(truth.rejected)
    assert dict(run.posts) == dict(truth.posts)


def test_dry_run_from_the_command_line_needs_no_broker():
    result = subprocess.run(
        [sys.executable, "-m", "agents", "replay", "--dry-run", "--limit", "100", str(SAMPLE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("events      100 ")
    bad = subprocess.run(
        [sys.executable, "-m", "agents", "replay", "--dry-run", "--from", "yesterday", str(SAMPLE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("spread: error: ")
    assert len(bad.stderr.strip().splitlines()) == 1

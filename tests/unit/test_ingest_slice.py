"""Stage 1's work on a slice (pipeline.ingest_slice), here and in a helper process."""

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time

import orjson
import pytest

from agents.app import Topology, create_app
from agents.ingest import HelperProcess
from pipeline import deltas as wire
from pipeline.ingest_slice import SliceConfig, SliceProcessor, empty_progress
from pipeline.settings import WorkerSettings
from pipeline.virality.generation import GenerationInterval

CONFIG = SliceConfig("posts", deltas_partitions=4)


def line(i: int, tags: list[str], ts: float = 600.0, parent: str | None = None) -> bytes:
    return orjson.dumps(
        {"id": str(i), "ts": ts, "hashtags": tags, "region": "FR", "parent": parent}
    )


def decoded(deltas: list[tuple[int, bytes]]) -> list[tuple[int, list]]:
    return [(target, wire.decode(value)) for target, value in deltas]


def test_new_records_make_one_entry_per_target_partition_with_their_ranges():
    process = SliceProcessor(CONFIG)
    records = [
        (1, 0, line(1, ["a", "b"]), False),
        (3, 7, b"\n".join([line(2, ["a"]), b"{nope"]), True),
        (1, 1, line(3, ["#A"]), False),
    ]
    result = process(records, {3: {**empty_progress(), "off": 6}}, now=1e9)
    assert result.rows[1]["off"] == 1 and result.rows[1]["acc"] == 2
    assert result.rows[3] == {"off": 7, "acc": 1, "rej": {"invalid_json": 1}, "wm": 600.0,
                              "late": 0}  # fmt: skip
    assert result.dead == [(b"posts/3/7", "invalid_json", b"{nope")]
    assert result.gaps == []
    posts = {}
    for target, entries in decoded(result.deltas):
        assert len(entries) == 1
        ranges, wm, tags = entries[0]
        assert ranges == [[1, 0, 1], [3, 7, 7]] and wm == 600.0
        for tag, delta in tags.items():
            assert target == wire.partition_for(tag, 4)
            posts[tag] = delta[0]
    assert posts == {"a": 3, "b": 1}


def test_redelivered_records_are_entries_of_their_own_and_counted_once():
    process = SliceProcessor(CONFIG)
    stored = {2: {**empty_progress(), "off": 1, "acc": 2, "wm": 600.0}}
    value = line(1, ["a"])
    # 0 and 1 were counted before this slice; 2 is new, and its second copy is read once.
    result = process([(2, o, value, False) for o in (0, 1, 2, 2)], stored, now=1e9)
    assert result.rows == {2: {"off": 2, "acc": 3, "rej": {}, "wm": 600.0, "late": 0}}
    [(_target, entries)] = decoded(result.deltas)
    assert [e[0] for e in entries] == [[[2, 0, 0]], [[2, 1, 1]], [[2, 2, 2]]]
    assert [e[2]["a"][0] for e in entries] == [1, 1, 1]


def test_a_record_past_the_next_offset_is_a_gap():
    process = SliceProcessor(CONFIG)
    stored = {0: {**empty_progress(), "off": 4}}
    result = process([(0, 5, line(1, ["a"]), False), (0, 9, line(2, ["a"]), False)], stored, 1e9)
    assert result.gaps == [(0, 6, 9)]
    assert result.rows[0]["off"] == 9


def test_events_older_than_the_watermark_minus_grace_are_late():
    process = SliceProcessor(SliceConfig("posts", 4, grace_seconds=60))
    stored = {0: {**empty_progress(), "off": 0, "wm": 10_000.0}}
    result = process([(0, 1, line(1, ["a"], ts=9_000.0), False)], stored, 1e9)
    assert result.rows[0]["late"] == 1
    [(_target, [(_ranges, _wm, tags)])] = decoded(result.deltas)
    assert tags["a"][2] == []  # in the total, not in a minute bucket


def test_the_processor_learns_the_generation_interval_across_slices():
    process = SliceProcessor(CONFIG)
    process([(0, 0, line(10, ["a"], ts=600.0), False)], {}, 1e9)
    result = process([(0, 1, line(11, ["a"], ts=720.0, parent="10"), False)], {}, 1e9)
    assert result.interval is not None and result.interval.samples == 1
    assert result.interval.counts[2] == 1  # two minutes after its parent
    assert SliceProcessor(SliceConfig("posts", 4, virality=False))([], {}, 1e9).interval is None


SLICES = [
    [(0, 0, b"\n".join(line(i, ["a", f"t{i % 7}"], 600.0 + i) for i in range(0, 50)), True)],
    [
        (1, 0, line(100, ["b"], 700.0, parent="0"), False),
        (0, 1, b"\n".join([line(101, ["a"], 650.0, parent="10"), b"[1]"]), True),
        (0, 0, line(0, ["a"]), False),  # a redelivery
    ],
]


async def run_slices(process) -> list[tuple]:
    """Each slice's result, with the interval learned as it was then."""
    rows: dict[int, dict] = {}
    out = []
    for records in SLICES:
        result = process(records, dict(rows), 1e9)
        if asyncio.iscoroutine(result):
            result = await result
        rows.update(result.rows)
        interval = result.interval
        assert isinstance(interval, GenerationInterval)
        learned = (list(interval.counts), interval.samples)
        out.append((result.rows, result.dead, result.deltas, result.gaps, learned))
    return out


async def test_a_helper_process_gives_what_the_worker_would_have_computed():
    helper = HelperProcess(CONFIG)
    try:
        there = await run_slices(helper)
    finally:
        helper.close()
    here = await run_slices(SliceProcessor(CONFIG))
    assert there == here
    assert [learned[1] for *_, learned in there] == [0, 2]
    assert there[1][1] == [(b"posts/0/1", "not_object", b"[1]")]


HELPER_OF_A_KILLED_WORKER = textwrap.dedent(
    """
    import asyncio, time
    from agents.ingest import HelperProcess
    from pipeline.ingest_slice import SliceConfig

    async def main():
        helper = HelperProcess(SliceConfig("posts", 4))
        await helper([], {}, 0.0)
        print(*helper.pids(), flush=True)
        time.sleep(60)

    asyncio.run(main())
    """
)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads /proc (Linux)")
def test_the_helper_exits_when_its_worker_is_killed():
    # SIGKILL gives the worker no chance to close the pool, and the helper's task queue never
    # reads EOF (the helper holds a write end of it too): it must notice on its own.
    worker = subprocess.Popen(
        [sys.executable, "-c", HELPER_OF_A_KILLED_WORKER], stdout=subprocess.PIPE, text=True
    )
    try:
        [pid] = map(int, worker.stdout.readline().split())
        assert alive(pid)
        os.kill(pid, signal.SIGINT)  # Ctrl-C reaches the whole process group: not its to act on
        time.sleep(0.5)
        assert alive(pid)
    finally:
        worker.kill()
        worker.wait()
    deadline = time.monotonic() + 30
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid)


@pytest.fixture
def app_with_helper(tmp_path):
    settings = WorkerSettings(
        broker="localhost:1", app_id="test-helper", data_dir=str(tmp_path), ingest_process=True
    )
    app = create_app(settings, Topology(posts=4, deltas=4))
    yield app
    if app.spread_ingest.helper is not None:
        app.spread_ingest.helper.close()


async def test_the_worker_goes_on_without_a_helper_that_died(app_with_helper):
    ingest = app_with_helper.spread_ingest
    registry = app_with_helper.spread_registry
    value = line(1, ["a"])
    first = await ingest._process([(0, 0, value, False)], {})
    assert registry.get_sample_value("spread_ingest_helper_up") == 1
    for pid in ingest.helper.pids():
        os.kill(pid, signal.SIGKILL)
    second = await ingest._process([(0, 1, value, False)], first.rows)
    assert ingest.helper is None  # from now on in the worker's own process
    assert second.rows[0]["off"] == 1 and second.rows[0]["acc"] == 2
    assert registry.get_sample_value("spread_ingest_helper_up") == 0


def test_auto_counts_the_cpus_the_worker_may_use(monkeypatch):
    from agents.cli import usable_cpus

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert usable_cpus() == 1  # pinned to one core: no helper
    monkeypatch.delattr(os, "sched_getaffinity")  # macOS has no affinity
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert usable_cpus() == 8

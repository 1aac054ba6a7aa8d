"""Stage 1's work on a slice (pipeline.ingest_slice), here and in a helper process."""

import asyncio
import gc
import os
import signal
import subprocess
import sys
import textwrap
import time

import orjson
import pytest

from agents import ingest as ingest_module
from agents.app import Topology, create_app
from agents.ingest import HelperProcess, Helpers
from pipeline import deltas as wire
from pipeline.ingest_slice import SliceConfig, SliceProcessor, empty_progress
from pipeline.settings import GC_THRESHOLDS, WorkerSettings
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
    assert tags["a"][2] == {}  # in the total, not in a minute bucket


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
        if asyncio.isfuture(result):
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
    # Sent at once, chained, from the rows stored before them: each slice follows on from
    # the one before it exactly as when sent one by one with the rows written in between.
    helper = HelperProcess(CONFIG)
    try:
        chained = [await f for f in [helper(records, {}, 1e9, chain=7) for records in SLICES]]
    finally:
        helper.close()
    assert [(r.rows, r.dead, r.deltas, r.gaps) for r in chained] == [h[:4] for h in here]
    assert [learned[1] for *_, learned in there] == [0, 2]
    assert there[1][1] == [(b"posts/0/1", "not_object", b"[1]")]


# Four source partitions, in slices that interleave them, with a redelivery, a gap, a
# rejected line and parent links within and across partitions.
def envelope(sp: int, so: int) -> bytes:
    return b"\n".join(line(100 * sp + 10 * so + k, ["a", f"t{sp}"], 600.0 + k) for k in range(5))


MIXED = [
    [(sp, so, envelope(sp, so), True) for so in range(2) for sp in range(4)],
    [
        (2, 2, line(7, ["b"], 700.0, parent="200"), False),
        (0, 1, line(0, ["a"]), False),  # a redelivery
        (1, 5, b"\n".join([line(8, ["a"], 650.0, parent="100"), b"[1]"]), True),  # after a gap
        (3, 2, line(9, ["c"], 720.0, parent="0"), False),
    ],
]


def posts_and_ranges(deltas: list[tuple[int, bytes]]) -> tuple[dict[str, int], list[tuple]]:
    """Posts per tag over every entry, and every entry's offset ranges."""
    posts: dict[str, int] = {}
    ranges = []
    for _target, entries in decoded(deltas):
        for entry_ranges, _wm, tags in entries:
            ranges += [tuple(r) for r in entry_ranges]
            for tag, delta in tags.items():
                posts[tag] = posts.get(tag, 0) + delta[0]
    return posts, sorted(set(ranges))


async def test_helpers_sharing_the_partitions_give_what_one_process_would(monkeypatch):
    monkeypatch.setattr(ingest_module, "SHARE_MIN_BYTES", 0)  # MIXED is small
    here, rows = [], {}
    process = SliceProcessor(CONFIG)
    for records in MIXED:
        result = process(records, dict(rows), 1e9)
        rows.update(result.rows)
        here.append(result)
    helpers = Helpers(CONFIG, 3)
    try:
        futures = helpers.submit(MIXED, {}, 1e9, chain=1)
        there = [await helpers.result(f) for f in futures]
        assert len(helpers.pids()) == 3  # every helper had a share
    finally:
        helpers.close()
    for a, b in zip(here, there, strict=True):
        assert a.rows == b.rows
        assert sorted(a.dead) == sorted(b.dead) and sorted(a.gaps) == sorted(b.gaps)
        # Entries differ (one per helper, each naming its own partitions' ranges), but they
        # cover the same records and carry the same posts.
        assert posts_and_ranges(a.deltas) == posts_and_ranges(b.deltas)
    assert len(decoded(there[0].deltas)) > len(decoded(here[0].deltas))  # shared, indeed
    # Each helper learns the parent links within its partitions, and the worker adds them
    # up. Here every link is within one helper's (partitions 0 and 3 share the first), and
    # the helpers learned one each.
    learned = [(r.interval.samples, list(r.interval.counts)) for r in (here[-1], there[-1])]
    assert learned[0] == learned[1] and learned[0][0] == 3


async def test_a_small_batch_goes_to_one_helper():
    helpers = Helpers(CONFIG, 2)
    try:
        [[(helper, future)], *_] = helpers.submit(MIXED, {}, 1e9, chain=1)
        assert helper == 0 and (await future).rows
    finally:
        helpers.close()


async def test_a_helper_collects_garbage_as_the_worker_does():
    helper = HelperProcess(CONFIG)
    try:
        thresholds = await asyncio.get_running_loop().run_in_executor(
            helper._pool, gc.get_threshold
        )
    finally:
        helper.close()
    assert thresholds == GC_THRESHOLDS


HELPER_OF_A_KILLED_WORKER = textwrap.dedent(
    """
    import asyncio, time
    from agents.ingest import Helpers, HelperProcess
    from pipeline.ingest_slice import SliceConfig

    async def main():
        helper = HelperProcess(SliceConfig("posts", 4))
        await helper([], {}, 0.0)
        print(helper.pid(), flush=True)
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
        broker="localhost:1", app_id="test-helper", data_dir=str(tmp_path), ingest_processes=2
    )
    app = create_app(settings, Topology(posts=4, deltas=4))
    yield app
    if app.spread_ingest.helpers is not None:
        app.spread_ingest.helpers.close()


async def test_the_worker_goes_on_without_a_helper_that_died(app_with_helper, monkeypatch):
    monkeypatch.setattr(ingest_module, "SHARE_MIN_BYTES", 0)  # both helpers, for small slices
    ingest = app_with_helper.spread_ingest
    registry = app_with_helper.spread_registry
    value = line(1, ["a"])
    rows: dict[int, dict] = {}

    async def ingest_slices(*records):
        async for result in ingest._results([[r] for r in records], rows):
            rows.update(result.rows)  # what the agent's write does to the table

    await ingest_slices((0, 0, value, False), (1, 0, value, False))
    assert registry.get_sample_value("spread_ingest_helper_up") == 1
    [pid, _other] = ingest.helpers.pids()
    os.kill(pid, signal.SIGKILL)
    await ingest_slices((0, 1, value, False), (1, 1, value, False), (0, 2, value, False))
    assert ingest.helpers is None  # from now on in the worker's own process
    assert rows[0]["off"] == 2 and rows[0]["acc"] == 3
    assert rows[1]["off"] == 1 and rows[1]["acc"] == 2
    assert registry.get_sample_value("spread_ingest_helper_up") == 0


def test_auto_counts_the_cpus_the_worker_may_use(tmp_path, monkeypatch):
    from click import BadParameter

    from agents.cli import AUTO_HELPERS_MAX, helper_count, usable_cpus

    assert [helper_count("auto", cpus) for cpus in (1, 2, 3, 64)] == [0, 2, 3, AUTO_HELPERS_MAX]
    assert [helper_count(spec, 2) for spec in ("on", "off", "0", "5")] == [1, 0, 0, 5]
    for bad in ("yes", "-1", "65", ""):
        with pytest.raises(BadParameter):
            helper_count(bad, 2)

    none = tmp_path / "no-cgroup"
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert usable_cpus(none) == 1  # pinned to one core: no helper
    monkeypatch.delattr(os, "sched_getaffinity")  # macOS has no affinity
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert usable_cpus(none) == 8


def test_auto_keeps_within_a_containers_cpu_quota(tmp_path, monkeypatch):
    from agents.cli import usable_cpus

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    v2 = tmp_path / "v2"
    v2.mkdir()
    for cpu_max, cpus in (("max 100000", 16), ("250000 100000", 2), ("50000 100000", 1)):
        (v2 / "cpu.max").write_text(cpu_max + "\n")  # docker --cpus, a Kubernetes limit
        assert usable_cpus(v2) == cpus
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    for quota_us, cpus in (("-1", 16), ("300000", 3)):
        (v1 / "cpu" / "cpu.cfs_quota_us").write_text(quota_us + "\n")
        assert usable_cpus(v1) == cpus


def test_a_helper_whose_worker_is_already_gone_exits_at_once():
    # The worker died while its helper started, so the helper's parent is no longer the
    # worker it was started for (here a pid that is not this child's parent stands for that
    # worker): the helper must exit, not wait for a task for ever.
    code = (
        "import os, time\n"
        "from pipeline.ingest_slice import SliceConfig, start_process\n"
        "start_process(SliceConfig('posts', 4), os.getppid() + 1)\n"
        "time.sleep(60)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], timeout=30, check=False)
    assert done.returncode == 0

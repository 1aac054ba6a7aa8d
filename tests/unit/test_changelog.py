"""ChangelogWriter and the bulk restore without a broker: what goes into the stores, the
batches sent (``tests/unit/fake_producer.py``) and a store restored from changelog records."""

from __future__ import annotations

import orjson

from agents.changelog import ChangelogWriter
from tests.unit.fake_producer import Producer


class Store:
    def __init__(self) -> None:
        self.data: dict = {}


class Topic:
    def __init__(self, name: str) -> None:
        self.name = name

    def get_topic_name(self) -> str:
        return self.name


class Table:
    def __init__(self, name: str) -> None:
        self.data = Store()
        self.changelog_topic = Topic(name)


def records(producer: Producer) -> dict[tuple[str, int], list[tuple[object, object]]]:
    out: dict[tuple[str, int], list[tuple[object, object]]] = {}
    for topic, partition, key, value in producer.records():
        out.setdefault((topic, partition), []).append((key, value))
    return out


def writer_with(producer: Producer) -> ChangelogWriter:
    writer = ChangelogWriter("unused:9092")
    writer._producer = producer  # type: ignore[assignment]
    return writer


async def test_stores_and_changelogs_get_every_write_in_order_with_tombstones():
    totals, buckets = Table("t-changelog"), Table("b-changelog")
    buckets.data.data[("gone", (0.0, 60.0))] = [1, {}, 0, {}]
    producer = Producer(batch_size=1 << 20)
    n = await writer_with(producer).write(
        (totals, [(0, "a", {"n": 1}), (1, "b", {"n": 2}), (0, "c", {"n": 3})]),
        (
            buckets,
            [(1, ("b", (60.0, 120.0)), [2, {"0": 5}, 0, {}]), (1, ("gone", (0.0, 60.0)), None)],
        ),
    )
    assert n == 5
    assert totals.data.data == {"a": {"n": 1}, "b": {"n": 2}, "c": {"n": 3}}
    assert buckets.data.data == {("b", (60.0, 120.0)): [2, {"0": 5}, 0, {}]}
    assert records(producer) == {
        ("t-changelog", 0): [("a", {"n": 1}), ("c", {"n": 3})],
        ("t-changelog", 1): [("b", {"n": 2})],
        ("b-changelog", 1): [
            (["b", [60.0, 120.0]], [2, {"0": 5}, 0, {}]),
            (["gone", [0.0, 60.0]], None),
        ],
    }


async def test_a_partition_that_fills_several_batches_keeps_its_order():
    table = Table("t-changelog")
    producer = Producer(batch_size=512)  # a few records per batch
    writes = [(i % 2, f"tag{i}", {"n": i, "pad": "x" * 100}) for i in range(60)]
    assert await writer_with(producer).write((table, writes)) == 60
    assert len(producer.sent) > 4
    got = records(producer)
    for partition in (0, 1):
        assert [key for key, _ in got[("t-changelog", partition)]] == [
            f"tag{i}" for i in range(partition, 60, 2)
        ]


async def test_the_writer_knows_the_last_offset_acknowledged_per_changelog_partition():
    table = Table("t-changelog")
    producer = Producer(batch_size=512)  # several batches per partition and per write
    writer = writer_with(producer)
    await writer.write((table, [(i % 3, f"tag{i}", {"pad": "x" * 100}) for i in range(40)]))
    await writer.write((table, [(1, "late", {"n": 1})]))
    counts = {p: sum(1 for i in range(40) if i % 3 == p) for p in range(3)}
    counts[1] += 1
    assert len(producer.sent) > 6
    assert writer.acked == {("t-changelog", p): n - 1 for p, n in counts.items()}


async def test_nothing_to_write_sends_nothing():
    producer = Producer(batch_size=1 << 20)
    assert await writer_with(producer).write((Table("t-changelog"), [])) == 0
    assert producer.sent == []


def test_a_bulk_restore_builds_what_faust_builds_from_the_same_changelog():
    import random
    from types import SimpleNamespace

    from faust.stores.memory import Store as FaustMemoryStore

    from agents.store import apply_records

    rng = random.Random(7)
    keys = [("t", (float(m), float(m + 60))) for m in range(0, 600, 60)] + ["a", "b"]
    records = []
    for _ in range(400):
        key = rng.choice(keys)
        value = None if rng.random() < 0.2 else [rng.randint(1, 9), {"0": rng.randint(0, 99)}]
        records.append((rng.randrange(4), orjson.dumps(key), value and orjson.dumps(value)))
    records.append((1, orjson.dumps(keys[0]), None))  # one key ends deleted

    def to_key(k):  # Faust's Collection._to_key: windowed keys come back as lists
        if isinstance(k, list):
            return tuple(tuple(v) if isinstance(v, list) else v for v in k)
        return k

    theirs = FaustMemoryStore.__new__(FaustMemoryStore)
    theirs.__post_init__()
    for i in range(0, len(records), 37):  # Faust applies buffers of records in turn
        theirs.apply_changelog_batch(
            [
                SimpleNamespace(
                    key=orjson.loads(k),
                    value=None if v is None else orjson.loads(v),
                    message=SimpleNamespace(partition=p, value=v),
                )
                for p, k, v in records[i : i + 37]
            ],
            to_key=to_key,
            to_value=lambda v: v,
        )
    data: dict = {}
    key_partition: dict = {}
    apply_records(data, key_partition, records, to_key)
    assert data == theirs.data and key_partition == theirs._key_partition
    last = {to_key(orjson.loads(k)): v for _, k, v in records}
    deleted = {k for k, v in last.items() if v is None}
    assert deleted and not deleted & data.keys()  # the last write wins, tombstones included
    assert data == {k: orjson.loads(v) for k, v in last.items() if v is not None}
    assert any(isinstance(k, tuple) for k in data)  # window keys as Faust's tuples


def test_the_counters_tables_use_the_bulk_restoring_store(tmp_path):
    from agents.app import Topology, create_app
    from agents.store import Store
    from pipeline.settings import WorkerSettings

    settings = WorkerSettings(broker="localhost:1", app_id="test-store", data_dir=str(tmp_path))
    app = create_app(settings, Topology(posts=4, deltas=4))
    counters = app.spread_counters
    # A table whose store URL is falsy silently falls back to the app's plain memory store.
    assert isinstance(counters.totals.data, Store)
    assert isinstance(counters.hours.table.data, Store)


async def test_a_kept_partition_reports_what_the_worker_wrote_since_its_last_recovery(tmp_path):
    from faust.types import TP

    from agents.app import Topology, create_app
    from pipeline.settings import WorkerSettings

    settings = WorkerSettings(broker="localhost:1", app_id="test-kept", data_dir=str(tmp_path))
    app = create_app(settings, Topology(posts=4, deltas=4))
    store = app.spread_counters.totals.data
    topic = app.spread_counters.totals.changelog_topic.get_topic_name()
    acked = app.spread_writer.acked
    p0, p1, other = TP(topic, 0), TP(topic, 1), TP("elsewhere", 0)
    acked[(topic, 1)] = 7  # written before this recovery: its records were read by it

    assert store.persisted_offset(p0) is None  # never recovered here: Faust decides
    await store.on_recovery_completed({p0, p1, other}, set())
    assert store.persisted_offset(p0) is None and store.persisted_offset(p1) is None
    acked[(topic, 0)] = 41
    acked[(topic, 1)] = 12
    assert (store.persisted_offset(p0), store.persisted_offset(p1)) == (41, 12)
    assert store.persisted_offset(other) is None

    # Revoked, then assigned again: nothing of the earlier writes is trusted any more.
    await store.on_rebalance(set(), {p0}, set())
    assert store.persisted_offset(p0) is None
    assert store.persisted_offset(p1) == 12

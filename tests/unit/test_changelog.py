"""ChangelogWriter without a broker: what it puts in the stores and in the batches it sends.

The producer here is a stand-in that keeps the batches handed to ``send_batch``; the batches
themselves are aiokafka's real builders, read back with aiokafka's record reader.
"""

from __future__ import annotations

import asyncio

import orjson
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatch

from agents.changelog import ChangelogWriter


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


class Producer:
    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.sent: list[tuple[str, int, BatchBuilder]] = []

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(self.batch_size, 0)

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int):
        self.sent.append((topic, partition, batch))
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def records(producer: Producer) -> dict[tuple[str, int], list[tuple[object, object]]]:
    out: dict[tuple[str, int], list[tuple[object, object]]] = {}
    for topic, partition, batch in producer.sent:
        for record in DefaultRecordBatch(bytes(batch._build())):
            value = None if record.value is None else orjson.loads(record.value)
            out.setdefault((topic, partition), []).append((orjson.loads(record.key), value))
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


async def test_nothing_to_write_sends_nothing():
    producer = Producer(batch_size=1 << 20)
    assert await writer_with(producer).write((Table("t-changelog"), [])) == 0
    assert producer.sent == []

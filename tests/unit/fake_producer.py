"""A stand-in for the changelog writer's aiokafka producer: it keeps the batches it is handed.

The batches are aiokafka's real builders, read back with aiokafka's record reader, so what a
test sees is what would have gone to the broker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import orjson
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatch
from aiokafka.structs import RecordMetadata, TopicPartition


class Producer:
    def __init__(self, batch_size: int = 1 << 20) -> None:
        self.batch_size = batch_size
        self.sent: list[tuple[str, int, BatchBuilder]] = []
        self.ends: dict[tuple[str, int], int] = {}  # the next offset, as a broker assigns them

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(self.batch_size, 0)

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int):
        self.sent.append((topic, partition, batch))
        base = self.ends.get((topic, partition), 0)
        self.ends[(topic, partition)] = base + batch.record_count()
        future = asyncio.get_running_loop().create_future()
        tp = TopicPartition(topic, partition)
        future.set_result(RecordMetadata(topic, partition, tp, base, -1, 0, 0))
        return future

    def records(self) -> Iterator[tuple[str, int, object, object]]:
        """(topic, partition, key, value) of every record sent, JSON-decoded; None: a
        tombstone."""
        for topic, partition, batch in self.sent:
            for record in DefaultRecordBatch(bytes(batch._build())):
                value = None if record.value is None else orjson.loads(record.value)
                yield topic, partition, orjson.loads(record.key), value

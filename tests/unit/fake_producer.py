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


class Producer:
    def __init__(self, batch_size: int = 1 << 20) -> None:
        self.batch_size = batch_size
        self.sent: list[tuple[str, int, BatchBuilder]] = []

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(self.batch_size, 0)

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int):
        self.sent.append((topic, partition, batch))
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    def records(self) -> Iterator[tuple[str, int, object, object]]:
        """(topic, partition, key, value) of every record sent, JSON-decoded; None: a
        tombstone."""
        for topic, partition, batch in self.sent:
            for record in DefaultRecordBatch(bytes(batch._build())):
                value = None if record.value is None else orjson.loads(record.value)
                yield topic, partition, orjson.loads(record.key), value

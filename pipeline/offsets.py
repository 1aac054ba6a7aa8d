"""End offsets that are right on the embedded broker too.

Tansu 0.6 answers ListOffsets(latest) with the base offset of the partition's last record
batch + 1, so a batch of 10 records reads as an end offset of 1 (DESIGN "Embedded broker").
Anything that reads "until the end" stops short: Faust's changelog recovery would restore
tables without their newest writes. :func:`true_end_offsets` fetches from the reported end - 1
(the first record of the last batch; a fetch returns whole batches) and keeps reading until a
fetch comes back empty, so the result is the offset after the last record. On a broker that
reports end offsets correctly it costs one small fetch per partition and changes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from pipeline import security


async def read_to_end(
    bootstrap: str,
    starts: Mapping[TopicPartition, int | None],
    timeout_ms: int = 500,
    **consumer_kwargs: Any,
) -> AsyncIterator[dict[TopicPartition, list[ConsumerRecord]]]:
    """The records of ``starts``' partitions from each start offset (None: the beginning), in
    fetched batches, until a fetch of every partition comes back empty: the end, whatever the
    broker reports as end offsets. Outside any consumer group, uncommitted records included,
    fetches large enough to hold a whole changelog batch (the writer's are up to 1 MiB)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        **security.client_kwargs(),
        enable_auto_commit=False,
        group_id=None,
        isolation_level="read_uncommitted",
        max_partition_fetch_bytes=8 << 20,
        **consumer_kwargs,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(tp.topic, tp.partition) for tp in starts]
        consumer.assign(tps)
        for tp, start in zip(tps, starts.values(), strict=True):
            if start is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, start)
        while True:
            batch = await consumer.getmany(timeout_ms=timeout_ms)
            got = {tp: records for tp, records in batch.items() if records}
            # Not per partition: one fetch may return some partitions before the others.
            if not got:
                return
            yield got
    finally:
        await consumer.stop()


async def true_end_offsets(
    bootstrap: str, reported: Mapping[TopicPartition, int | None], timeout_ms: int = 500
) -> dict[TopicPartition, int | None]:
    out: dict[TopicPartition, int | None] = dict(reported)
    todo = {tp: end - 1 for tp, end in reported.items() if end}
    if not todo:
        return out
    async with aclosing(read_to_end(bootstrap, todo, timeout_ms)) as batches:
        async for got in batches:
            for tp, records in got.items():
                out[tp] = max(out[tp] or 0, records[-1].offset + 1)
    return out

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

from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline import security


async def true_end_offsets(
    bootstrap: str, reported: Mapping[TopicPartition, int | None], timeout_ms: int = 500
) -> dict[TopicPartition, int | None]:
    out: dict[TopicPartition, int | None] = dict(reported)
    todo = {tp: end for tp, end in reported.items() if end}
    if not todo:
        return out
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        **security.client_kwargs(),
        enable_auto_commit=False,
        group_id=None,
        isolation_level="read_uncommitted",
        # Above the changelog writer's batches (1 MiB): a fetch must hold a whole last batch.
        max_partition_fetch_bytes=8 << 20,
    )
    await consumer.start()
    try:
        consumer.assign(list(todo))
        for tp, end in todo.items():
            consumer.seek(TopicPartition(tp.topic, tp.partition), end - 1)
        while True:
            batch = await consumer.getmany(timeout_ms=timeout_ms)
            got = {tp for tp, records in batch.items() if records}
            if not got:
                break  # done once a fetch of every partition returns nothing more
            for tp in got:
                last = batch[tp][-1].offset + 1
                out[tp] = max(out[tp] or 0, last)
    finally:
        await consumer.stop()
    return out

"""The embedded broker: known defects (DESIGN "Embedded broker") and the mitigations we rely on."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from pipeline.offsets import true_end_offsets
from pipeline.producer import ensure_topics

pytestmark = pytest.mark.integration


async def _produce_one_batch(bootstrap: str, topic: str, n: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=200)
    await producer.start()
    try:
        futures = [await producer.send(topic, b"r%d" % i, partition=0) for i in range(n)]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _end_offsets(bootstrap: str, tp: TopicPartition) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        return (await consumer.end_offsets([tp]))[tp]
    finally:
        await consumer.stop()


def test_high_watermark_defect_and_true_end_offsets(broker):
    """Tansu reports base offset of the last batch + 1; true_end_offsets reads to the real end.

    If the first assertion starts failing, the broker was fixed: the workaround can go.
    """
    tp = TopicPartition("hw", 0)

    async def scenario():
        await ensure_topics(broker.bootstrap, {"hw": 1})
        await _produce_one_batch(broker.bootstrap, "hw", 10)
        reported = await _end_offsets(broker.bootstrap, tp)
        corrected = await true_end_offsets(broker.bootstrap, {tp: reported})
        return reported, corrected[tp]

    reported, corrected = asyncio.run(scenario())
    assert reported == 1, "the embedded broker now reports end offsets correctly"
    assert corrected == 10


def test_true_end_offsets_of_many_partitions_with_large_batches(broker):
    """What table recovery asks for: eight changelog partitions whose last batches are large
    (the changelog writer sends batches of up to 1 MiB). A first fetch that returned some of
    the partitions used to end the others at the reported (wrong) end."""
    topic, partitions, batches, per_batch = "hw-many", 8, 3, 500
    value = b"v" * 1500

    async def scenario():
        await ensure_topics(broker.bootstrap, {topic: partitions})
        producer = AIOKafkaProducer(
            bootstrap_servers=broker.bootstrap, max_batch_size=1 << 20, max_request_size=4 << 20
        )
        await producer.start()
        try:
            for _ in range(batches):
                futures = []
                for p in range(partitions):
                    batch = producer.create_batch()
                    for i in range(per_batch):
                        assert batch.append(key=b"k%d" % i, value=value, timestamp=None)
                    futures.append(await producer.send_batch(batch, topic, partition=p))
                await asyncio.gather(*futures)
        finally:
            await producer.stop()
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        reported = {tp: await _end_offsets(broker.bootstrap, tp) for tp in tps}
        return reported, await true_end_offsets(broker.bootstrap, reported)

    reported, corrected = asyncio.run(scenario())
    assert set(reported.values()) == {(batches - 1) * per_batch + 1}  # the defect, as above
    assert set(corrected.values()) == {batches * per_batch}


def test_true_end_offsets_leaves_empty_partitions_alone(broker):
    tp = TopicPartition("empty", 0)

    async def scenario():
        await ensure_topics(broker.bootstrap, {"empty": 1})
        return await true_end_offsets(broker.bootstrap, {tp: 0})

    assert asyncio.run(scenario()) == {tp: 0}


def test_topics_get_the_requested_partition_count(broker):
    """Describing a missing topic makes Tansu create it with 4 partitions: we must not."""

    async def scenario():
        first = await ensure_topics(broker.bootstrap, {"posts": 8, "other": 3})
        again = await ensure_topics(broker.bootstrap, {"posts": 2})
        return first, again

    first, again = asyncio.run(scenario())
    assert first == {"posts": 8, "other": 3}
    assert again == {"posts": 8}  # an existing topic keeps its count

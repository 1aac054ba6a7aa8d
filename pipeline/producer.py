"""The producer side: topic creation and batched, acknowledged sends with aiokafka."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from pipeline import security

# Envelopes are bounded well under the broker's default 1 MB message size.
MAX_REQUEST_BYTES = 4 * 1024 * 1024


class BrokerUnavailable(RuntimeError):
    """The broker cannot be reached; one line meant for a user."""


async def ensure_topics(
    bootstrap: str, wanted: Mapping[str, int], timeout: float = 30.0
) -> dict[str, int]:
    """Create the topics that are missing; return every topic's actual partition count.

    A topic that exists keeps its partition count (changing it would move hashtags between
    partitions and break per-partition state), so callers use what this returns.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=10_000, **security.client_kwargs()
    )
    try:
        await asyncio.wait_for(admin.start(), timeout)
    except (TimeoutError, KafkaConnectionError, KafkaError, OSError) as exc:
        await admin.close()
        raise BrokerUnavailable(f"cannot reach broker {bootstrap}: {exc}") from exc
    try:
        # list_topics first: describing a topic that does not exist makes some brokers
        # (Tansu, Kafka with auto.create.topics.enable) create it with their default count.
        present = set(await admin.list_topics())
        missing = [
            NewTopic(name, num_partitions=n, replication_factor=1)
            for name, n in wanted.items()
            if name not in present
        ]
        if missing:
            # A concurrent worker or producer may win the race to create them.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
        existing = await _partition_counts(admin, list(wanted))
        return {name: existing.get(name, wanted[name]) for name in wanted}
    finally:
        await admin.close()


async def _partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for desc in await admin.describe_topics(names):
        if desc.get("error_code", 0) == 0 and desc.get("partitions"):
            out[desc["topic"]] = len(desc["partitions"])
    return out


def make_producer(bootstrap: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        **security.client_kwargs(),
        acks="all",
        linger_ms=5,
        max_batch_size=1024 * 1024,
        max_request_size=MAX_REQUEST_BYTES,
        request_timeout_ms=30_000,
    )


async def start_producer(bootstrap: str) -> AIOKafkaProducer:
    producer = make_producer(bootstrap)
    try:
        await producer.start()
    except (KafkaConnectionError, KafkaError, OSError) as exc:
        await producer.stop()
        raise BrokerUnavailable(f"cannot reach broker {bootstrap}: {exc}") from exc
    return producer

"""Coalesced table writes: set the value in the store, send one changelog record per key.

Faust's ``table[key] = value`` costs a few hundred microseconds (a FutureMessage, its
buffer, stdlib-json serialisation) and needs a current event to pick the partition. Our
writes happen once per key per batch, for a partition we already know, so they go straight to
the producer: orjson-encoded (standard JSON, so Faust's recovery decodes them as usual) and
with an explicit partition.

The memory store keeps no persisted offsets, so skipping Faust's on-sent bookkeeping loses
nothing; a disk store (RocksDB) would need it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    import faust


Writes = Iterable[tuple[int, Any, Any]]  # (partition, key, value)


async def write(app: faust.App, *groups: tuple[Any, Writes]) -> int:
    """Apply ``(table, writes)`` groups to the stores, then send them to the changelogs.

    Every store is updated before the first send is awaited, so a scrape (which runs between
    two awaits) sees a batch entirely or not at all. Returns the number of records sent.
    """
    batches = []
    for table, writes in groups:
        writes = list(writes)
        data = table.data
        for _partition, key, value in writes:
            data[key] = value
        batches.append((table.changelog_topic.get_topic_name(), writes))
    send = app.producer.send
    dumps = orjson.dumps
    n = 0
    for topic, writes in batches:
        for partition, key, value in writes:
            await send(topic, dumps(key), dumps(value), partition, None, None)
        n += len(writes)
    return n

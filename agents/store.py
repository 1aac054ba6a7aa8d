"""A memory store that restores its changelog partitions in bulk before Faust's recovery.

Faust restores a table by reading its changelog through the app's consumer, one record at a
time: a stream event, a queue, a buffer and stdlib JSON per record. ``bench/recovery.py``
measured that at several times the cost of counting the same events from ``posts``, and the
embedded broker never compacts a changelog, so every write ever made is read again.

:class:`Store` is Faust's memory store plus one step: when partitions are assigned, before
Faust's recovery looks at them, it reads each changelog partition of its table that it does
not hold yet from the beginning with a plain aiokafka consumer (batches of records, orjson),
applies the records in offset order exactly as Faust's ``apply_changelog_batch`` would (same
key conversion, tombstones delete, the partition of each key remembered), and reports the
last offset applied as the partition's *persisted offset*. Faust's recovery then starts
there: it reads whatever was written after the bulk read (nothing, usually) its usual way, up
to the true high watermark (``install_true_highwaters``). The result is the state Faust's own
recovery would have built; only the reading is cheaper.

What a persisted offset means here: the store holds the changelog up to and including that
offset. A partition read in bulk reports the last offset read, for the rebalance that read it.
A partition *kept* across a rebalance reports the last offset the worker's own
:class:`agents.changelog.ChangelogWriter` had acknowledged on it, if it wrote there since
Faust's last completed recovery: the store already holds everything up to it (the recovery
read the rest, and the writer sets the store before it sends), so Faust reads nothing again.
Without that, Faust's recovery re-read, one record at a time, everything the worker had
written to its kept partitions since its previous recovery (4,012 records in the join test of
``tests/integration/test_scaling.py``; all of them redundant). A kept partition not written
since reports none, and Faust goes on from where its own recovery last read, as with the
plain memory store. A revoked partition is forgotten (Faust drops its keys after the
recovery), so a partition assigned again is read from the beginning, as Faust would. Records
Faust's recovery still applies its own way are counted (``replayed_records``).

Checked against faust-streaming 0.15.3's recovery (``Recovery._add`` reads
``persisted_offset`` after ``Collection.on_rebalance`` ran; it seeks to that offset and skips
records at or below it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import aclosing
from typing import Any

import orjson
from faust.stores import STORES
from faust.stores.memory import Store as MemoryStore
from faust.types import TP

from pipeline.offsets import read_to_end

log = logging.getLogger(__name__)

SCHEME = "spread-memory"
# Read to the end once a fetch this long returns nothing. Stopping early costs only speed:
# Faust's recovery reads whatever is left.
FETCH_TIMEOUT_MS = 300
MAX_RECORDS = 50_000


def apply_records(
    data: dict[Any, Any],
    key_partition: dict[Any, int],
    records: Iterable[tuple[int, bytes | None, bytes | None]],
    to_key: Callable[[Any], Any],
) -> None:
    """Apply changelog records ``(partition, key, value)`` in order: a value sets its key, a
    tombstone (value None) deletes it. What Faust's memory store does with a batch of
    changelog events, from the raw bytes (JSON, as the table's serializers write them)."""
    loads = orjson.loads
    for partition, raw_key, raw_value in records:
        key = to_key(loads(raw_key)) if raw_key is not None else None
        key_partition[key] = partition
        if raw_value is None:
            data.pop(key, None)
            key_partition.pop(key, None)
        else:
            data[key] = loads(raw_value)


class Store(MemoryStore):
    """Faust's memory store, restored in bulk (see the module docstring)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        # Changelog partitions whose state this store holds: read in bulk, and kept since.
        self._loaded: set[TP] = set()
        # What this rebalance's bulk read reached, per partition it read.
        self._persisted: dict[TP, int] = {}
        # Partitions held since Faust's last completed recovery: the writer's acknowledged
        # offset on each at that moment (None: none yet). A higher one is the worker's own.
        self._recovered_at: dict[TP, int | None] = {}
        self.bulk_records = 0  # changelog records this store read in bulk, in all
        self.replayed_records = 0  # changelog records Faust's recovery applied one by one

    def persisted_offset(self, tp: TP) -> int | None:
        """The last offset read in bulk by the current rebalance; for a partition kept from
        before it, the last offset this worker wrote there since its last recovery. None for
        a kept partition not written since: Faust then goes on from the offset its own
        recovery last reached, as it does with the plain memory store."""
        read = self._persisted.get(tp)
        if read is not None or tp not in self._recovered_at:
            return read
        written, before = self._written(tp), self._recovered_at[tp]
        if written is not None and (before is None or written > before):
            return written
        return None

    def _written(self, tp: TP) -> int | None:
        writer = getattr(self.app, "spread_writer", None)  # agents.app.create_app sets it
        return None if writer is None else writer.acked.get((tp.topic, tp.partition))

    def apply_changelog_batch(self, batch: Any, to_key: Any, to_value: Any) -> None:
        batch = list(batch)
        self.replayed_records += len(batch)
        super().apply_changelog_batch(batch, to_key, to_value)

    async def on_recovery_completed(self, active_tps: set[TP], standby_tps: set[TP]) -> None:
        await super().on_recovery_completed(active_tps, standby_tps)
        topic = self.table.changelog_topic.get_topic_name()
        self._recovered_at = {tp: self._written(tp) for tp in active_tps if tp.topic == topic}

    async def on_rebalance(
        self,
        assigned: set[TP],
        revoked: set[TP],
        newly_assigned: set[TP],
        generation_id: int = 0,
    ) -> None:
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)
        self._loaded -= revoked
        self._persisted.clear()
        for tp in revoked:
            self._recovered_at.pop(tp, None)
        topic = self.table.changelog_topic.get_topic_name()
        todo = {tp for tp in assigned if tp.topic == topic} - self._loaded
        if not todo:
            return
        try:
            await self._bulk_read(todo)
        except Exception as exc:  # Faust's own recovery still restores them
            # Records applied before the failure are re-applied, in order, by Faust's recovery
            # from the beginning (no persisted offset): the same state, only slower.
            log.warning("%s: bulk restore failed (%r), Faust reads it", self.table.name, exc)
            return
        self._loaded |= todo

    def reset_state(self) -> None:
        super().reset_state()
        self._loaded.clear()
        self._persisted.clear()
        self._recovered_at.clear()

    async def _bulk_read(self, tps: set[TP]) -> None:
        bootstrap = ",".join(f"{url.host}:{url.port or 9092}" for url in self.app.conf.broker)
        data = self.data
        key_partition = self._key_partition
        to_key = self.table._to_key
        last: dict[TP, int] = {}
        n = 0
        batches = read_to_end(
            bootstrap,
            dict.fromkeys(tps),  # from the beginning
            FETCH_TIMEOUT_MS,
            fetch_max_wait_ms=100,
            fetch_max_bytes=64 << 20,
            max_poll_records=MAX_RECORDS,
        )
        async with aclosing(batches):  # its consumer stops even if applying fails
            async for batch in batches:
                for ktp, records in batch.items():
                    apply_records(
                        data,
                        key_partition,
                        ((r.partition, r.key, r.value) for r in records),
                        to_key,
                    )
                    last[TP(ktp.topic, ktp.partition)] = records[-1].offset
                    n += len(records)
        self._persisted.update(last)
        self.bulk_records += n
        log.info(
            "%s: %d changelog records read in bulk from %d partitions",
            self.table.name,
            n,
            len(tps),
        )


def register() -> str:
    """Make ``spread-memory://local`` name this store; returns the URL to give a table."""
    STORES.aliases[SCHEME] = f"{__name__}:Store"
    # A host, because a table falls back to the app's store when its URL is falsy, and yarl
    # finds "scheme://" alone falsy.
    return f"{SCHEME}://local"

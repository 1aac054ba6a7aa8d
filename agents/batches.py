"""Records of one topic handed to its agent a fetch at a time instead of one by one.

Faust (faust-streaming 0.15.3) delivers every record on its own: the fetch loop
(``Consumer._drain_messages``) awaits ``wait_first`` on two new tasks per record, the topic's
conductor builds an ``Event`` and puts it in the stream's queue, and the stream takes it out
again with its sensors. That is a few hundred microseconds per record whatever the record
holds, which bounds single-event records from other producers at a few thousand a second
(DESIGN "Dataflow"; a py-spy profile put ~50 % of the worker's event loop there).

:class:`Batches` replaces the fetch loop with a copy that differs in one place: records of
its topic are collected for the whole fetch and put in one bounded queue, once; records of
every other topic (the counters' ``hashtag-deltas``, changelogs) go through Faust's path as
before. The agent takes lists of records with :meth:`Batches.take`. What Faust's stream
guarantees is kept:

- **Acknowledgement**: a record is tracked as unacknowledged when the agent takes it and
  acknowledged (``Consumer.ack``, so the commit advances) when the agent asks for the next
  batch, as ``take_events`` does; a rebalance waits for the batch in hand
  (``Consumer.wait_empty``).
- **Rebalances**: the queue is a ``FlowControlQueue`` cleared by the app's flow control when
  a rebalance starts, like a stream's buffer, so queued records are dropped and fetched again
  from the committed offsets by whoever gets the partition. A batch taken while the flow is
  stopped, or records in it fetched before the current generation, are dropped the same way.
- **Back-pressure**: while the queue is full the fetch loop waits, as Faust's does when a
  stream's buffer is full, and a rebalance (``suspend_flow``) or a stop ends the wait.

The copy is pinned to the Faust version it was taken from (:data:`FAUST_VERSION`): with any
other version :meth:`Batches.install` declines, says so once in the log, and the agent takes
Faust's events as before (``tests/unit/test_batches.py`` checks the pin and that the copy is
the one Faust runs; the integration tests run every stage-1 record through it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, cast

import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.types import Message

log = logging.getLogger(__name__)

FAUST_VERSION = "0.15.3"
# Fetches queued before the fetch loop waits: each is at most the consumer's fetch size
# per partition (1 MiB by default) over the partitions assigned.
MAX_PENDING_FETCHES = 4
# Records taken at most at once from what is queued (more are left for the next batch).
MAX_BATCH_RECORDS = 16_384


class Batches:
    """The records of ``topic`` as lists, a fetch or more at a time (see the module)."""

    def __init__(self, app: faust.App, topic: str) -> None:
        self.app = app
        self.topic = topic
        self.installed = False
        self._queue: Any = None  # created on the worker's event loop, at install

    def install(self) -> bool:
        """Run the worker's fetch loop with batch delivery for the topic; False (and a log
        line) with a Faust version other than the one it was written for."""
        if faust.__version__ != FAUST_VERSION:
            log.warning(
                "faust-streaming %s is not %s: records of %s are delivered one by one "
                "(slower for single-event records)",
                faust.__version__,
                FAUST_VERSION,
                self.topic,
            )
            return False
        consumer = self.app.consumer
        self._queue = self.app.FlowControlQueue(maxsize=MAX_PENDING_FETCHES, clear_on_resume=True)
        consumer._drain_messages = self._drain_messages(consumer)  # type: ignore[method-assign]
        self.installed = True
        return True

    async def _deliver(self, messages: list[Message]) -> None:
        await self.app.producer.buffer.wait_until_ebb()
        await self._queue.put(messages)  # waits while the flow is stopped or the queue full

    async def take(self) -> AsyncIterator[list[Message]]:
        """Lists of records in fetch order (per partition, in offset order); a list is
        acknowledged when the next one is asked for."""
        app = self.app
        consumer = app.consumer
        queue = self._queue
        while True:
            batch: list[Message] = await queue.get()
            while len(batch) < MAX_BATCH_RECORDS and not queue.empty():
                batch = batch + queue.get_nowait()
            generation = app.consumer_generation_id
            if not app.flow_control.is_active():
                continue  # a rebalance stopped the flow: read again from the committed offset
            if any(m.generation_id != generation for m in batch):
                # Fetched before a rebalance: read again from the committed offset too.
                batch = [m for m in batch if m.generation_id == generation]
                if not batch:
                    continue
            # Tracked from here until acknowledged, as a stream tracks the event it takes: a
            # rebalance waits for them. Not before: a record in the queue or in the fetch
            # loop's hands when a rebalance clears the queue must not be waited for.
            track = consumer.unacked.add
            for message in batch:
                track(message)
            yield batch
            ack = consumer.ack
            for message in batch:
                ack(message)

    def _drain_messages(self, consumer: Any) -> Any:
        """A copy of faust-streaming 0.15.3's ``Consumer._drain_messages`` bound to
        ``consumer``, where the records of ``self.topic`` of each fetch are delivered once,
        together, after the fetch's other records."""
        topic = self.topic
        deliver = self._deliver

        async def drain_messages(fetcher: Any) -> None:
            self_ = consumer
            callback = self_.callback
            getmany = self_.getmany
            consumer_should_stop = self_._stopped.is_set
            fetcher_should_stop = fetcher._stopped.is_set
            get_read_offset = self_._read_offset.__getitem__
            set_read_offset = self_._read_offset.__setitem__
            flag_consumer_fetching = CONSUMER_FETCHING
            set_flag = self_.diag.set_flag
            unset_flag = self_.diag.unset_flag
            commit_every = self_._commit_every
            acks_enabled_for = self_.app.topics.acks_enabled_for
            yield_every = 100
            num_since_yield = 0
            sleep = asyncio.sleep
            try:
                while not (consumer_should_stop() or fetcher_should_stop()):
                    set_flag(flag_consumer_fetching)
                    ait = cast(AsyncIterator, getmany(timeout=1.0))
                    await self_.sleep(0)
                    if not self_.should_stop:
                        batch: list[Message] = []
                        async for tp, message in ait:
                            num_since_yield += 1
                            if num_since_yield > yield_every:
                                await sleep(0)
                                num_since_yield = 0
                            offset = message.offset
                            r_offset = get_read_offset(tp)
                            if r_offset is None or offset >= r_offset:
                                gap = offset - (r_offset or 0)
                                if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                    await self_._add_gap(tp, r_offset + 1, offset)
                                if commit_every is not None and self_._n_acked >= commit_every:
                                    self_._n_acked = 0
                                    await self_.commit()
                                if message.topic == topic:
                                    batch.append(message)
                                else:
                                    await self_.wait_first(
                                        callback(message), self_.suspend_flow.wait()
                                    )
                                set_read_offset(tp, offset)
                        if batch:
                            await self_.wait_first(deliver(batch), self_.suspend_flow.wait())
                        unset_flag(flag_consumer_fetching)
            except self_.consumer_stopped_errors:
                if self_.transport.app.should_stop:
                    self_.log.info("Broker stopped consumer, shutting down...")
                    return
                raise
            except asyncio.CancelledError:
                if self_.transport.app.should_stop:
                    self_.log.info("Consumer shutting down for user cancel.")
                    return
                raise
            except Exception as exc:
                self_.log.exception("Drain messages raised: %r", exc)
                raise
            finally:
                unset_flag(flag_consumer_fetching)

        return drain_messages

"""Records handed to the agents a fetch at a time instead of one by one.

Faust (faust-streaming 0.15.3) delivers every record on its own: the fetch loop
(``Consumer._drain_messages``) awaits ``wait_first`` on two new tasks per record, the topic's
conductor builds an ``Event`` and puts it in the stream's queue, and the stream takes it out
again with its sensors. That is a few hundred microseconds per record whatever the record
holds, which bounds single-event records from other producers at a few thousand a second
(DESIGN "Dataflow"; a py-spy profile put ~50 % of the worker's event loop there).

:func:`install` replaces the fetch loop with a copy that differs in one place: the records
of each topic given a :class:`Batches` (both stages' input topics, ``posts`` and
``hashtag-deltas``) are collected for the whole fetch and put in that topic's bounded queue,
once; records of every other topic (changelogs in a recovery) go through Faust's path as
before. An agent takes lists of records with :meth:`Batches.take`, which takes Faust's
events from its stream instead where the copy is not installed (Faust's test contexts, or
another Faust version). What Faust's stream guarantees is kept:

- **Acknowledgement**: a record is tracked as unacknowledged when the agent takes it and
  acknowledged (``Consumer.ack``, so the commit advances) when the agent asks for the next
  batch, as ``take_events`` does; a rebalance waits for the batch in hand
  (``Consumer.wait_empty``, replaced by a copy that collects garbage less often and does
  not wait in a stop: see :func:`_wait_empty`).
- **Rebalances**: the queue is a ``FlowControlQueue`` cleared by the app's flow control when
  a rebalance starts, like a stream's buffer, so queued records are dropped and fetched again
  from the committed offsets by whoever gets the partition. A batch taken while the flow is
  stopped, or records in it fetched before the current generation, are dropped the same way.
- **Back-pressure**: as with a stream's buffer, a queue holding ``max_fetches`` or nearly
  stops the fetching of its topic's partitions (``Consumer.on_buffer_full``) until it is
  down to a few (``on_buffer_drop``); the fetch loop itself never waits for an agent, so one
  stage behind does not hold up the other's records.

The copy is pinned to the Faust version it was taken from (:data:`FAUST_VERSION`): with any
other version :func:`install` declines, says so once in the log, and the agents take
Faust's events as before (``tests/unit/test_batches.py`` checks the pin and the source of the
loop it copies; the integration tests run every record of both stages through it).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from time import monotonic
from typing import Any, cast

import faust
from faust.transport.consumer import CONSUMER_FETCHING, CONSUMER_WAIT_EMPTY
from faust.types import Message

log = logging.getLogger(__name__)

FAUST_VERSION = "0.15.3"


class Batches:
    """The records of ``topic`` as lists, a fetch or more at a time (several when more are
    queued, up to ``max_records``), with about ``max_fetches`` fetches queued at most (each
    at most the consumer's fetch size per partition, 1 MiB by default, over the partitions
    assigned); see the module."""

    def __init__(self, app: faust.App, topic: str, max_records: int, max_fetches: int) -> None:
        self.app = app
        self.topic = topic
        self.max_records = max_records
        self.max_fetches = max_fetches
        self.installed = False
        self._queue: Any = None  # made by install()
        self._paused: set[Any] = set()  # partitions not fetched while the queue is full
        # Awaited after the first fetch of a batch, before the queue is drained into it: how
        # a stage lets more records gather while another is busy (see agents.app).
        self.hold: Callable[[], Awaitable[None]] | None = None

    def take(
        self, stream: faust.StreamT, max_records: int, within: float
    ) -> AsyncIterator[list[Message]]:
        """The agent's records, a list at a time, each acknowledged when the next one is
        asked for: a fetch or more at a time once :func:`install` ran, else the events of
        ``stream`` taken by Faust, at most ``max_records`` within ``within`` seconds."""
        if self.installed:
            return self._take()
        return _messages(stream.take_events(max_records, within=within))

    async def deliver(self, messages: list[Message]) -> None:
        """A fetch's records of the topic, from the fetch loop; as Faust's conductor does, it
        waits while the flow is stopped or the producer's buffer is full, never for the
        agent: a queue under pressure stops its partitions from being fetched instead."""
        await self.app.flow_control.acquire()
        await self.app.producer.buffer.wait_until_ebb()
        self._queue.put_nowait_enhanced(
            messages, on_pressure_high=self._pressure_high, on_pressure_drop=self._pressure_drop
        )

    def _pressure_high(self) -> None:
        consumer = self.app.consumer
        for tp in consumer.assignment():
            if tp.topic == self.topic:
                consumer.on_buffer_full(tp)
                self._paused.add(tp)

    def _pressure_drop(self) -> None:
        consumer = self.app.consumer
        assigned = consumer.assignment()
        for tp in self._paused:
            if tp in assigned:  # not one revoked since
                consumer.on_buffer_drop(tp)
        self._paused.clear()

    async def _take(self) -> AsyncIterator[list[Message]]:
        app = self.app
        consumer = app.consumer
        queue = self._queue
        max_records = self.max_records
        while True:
            batch: list[Message] = await queue.get()
            if self.hold is not None:
                await self.hold()
            while len(batch) < max_records and not queue.empty():
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
            # What a stream's sensors record for each event it takes: Faust's consumer logs
            # "Stream has not started processing" (an ERROR, every few seconds) for a partition
            # with records waiting and no time here for 5 minutes, which a worker far behind
            # (bench/soak.py's sustained phase) reached with every partition it was reading.
            inbound = app.monitor.stream_inbound_time
            now = monotonic()
            for tp in {message.tp for message in batch}:
                inbound[tp] = now
            yield batch
            ack = consumer.ack
            for message in batch:
                ack(message)


def install(app: faust.App, batches: Sequence[Batches]) -> bool:
    """Run the worker's fetch loop with batch delivery for the topics of ``batches``; False
    (and a log line) with a Faust version other than the one it was written for."""
    if faust.__version__ != FAUST_VERSION:
        log.warning(
            "faust-streaming %s is not %s: records of %s are delivered one by one "
            "(slower, single-event records most)",
            faust.__version__,
            FAUST_VERSION,
            ", ".join(b.topic for b in batches),
        )
        return False
    for b in batches:
        b._queue = app.FlowControlQueue(maxsize=b.max_fetches, clear_on_resume=True)
        b.installed = True
    consumer = app.consumer
    consumer._drain_messages = _drain_messages(consumer, {b.topic: b for b in batches})
    consumer.wait_empty = _wait_empty(consumer)
    return True


# Waits of (at most) a second between full collections in _wait_empty.
FULL_COLLECTION_EVERY = 10


def _wait_empty(consumer: Any) -> Callable[[], Awaitable[None]]:
    """faust-streaming 0.15.3's ``Consumer.wait_empty`` bound to ``consumer``, with two
    differences: in a stop of the app it commits what is acknowledged without waiting for
    the rest; and a full garbage collection every :data:`FULL_COLLECTION_EVERY` seconds of
    waiting, not every second, and the young generations in between.

    Faust collects to free records that an agent left unacknowledged in a reference cycle
    (a crashed agent's frames, say: freed, they leave its weak set of unacknowledged
    records). With the tables' millions of objects, each full collection took seconds and
    held the event loop, and so held up the very agents it waited for: a worker with a
    million hashtags took 20-28 s to stop, one far behind in the soak over a minute, logging
    "Thread keepalive is not responding" on the way; a rebalance waited the same way. Such
    a record is still freed, by the next full collection at the latest, so the wait still
    ends; a wait for agents that finish their batch within the interval has none."""

    async def wait_empty() -> None:
        consumer.diag.set_flag(CONSUMER_WAIT_EMPTY)
        try:
            waited = 0
            # A stop does not wait: the batches in hand stay unacknowledged and are read
            # again at the next start, as after a kill (the marks make that exact). Waiting
            # for them took a worker far behind 40 s (the soak's sustained phase).
            stopping = consumer.app.should_stop
            while not (stopping or consumer.should_stop) and consumer._unacked_messages:
                waited += 1
                gc.collect(2 if waited % FULL_COLLECTION_EVERY == 0 else 1)
                await consumer.commit()
                if not consumer._unacked_messages:
                    break
                await consumer._wait_for_ack(timeout=1)
                consumer._clean_unacked_messages()
            await consumer.commit_and_end_transactions()
        finally:
            consumer.diag.unset_flag(CONSUMER_WAIT_EMPTY)

    return wait_empty


def _drain_messages(consumer: Any, by_topic: dict[str, Batches]) -> Any:
    """A copy of faust-streaming 0.15.3's ``Consumer._drain_messages`` bound to ``consumer``,
    where the records of each topic of ``by_topic`` in a fetch are delivered once, together,
    after the fetch's other records."""

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
                    fetched: dict[str, list[Message]] = {topic: [] for topic in by_topic}
                    ours = fetched.get
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
                            mine = ours(message.topic)
                            if mine is not None:
                                mine.append(message)
                            else:
                                await self_.wait_first(callback(message), self_.suspend_flow.wait())
                            set_read_offset(tp, offset)
                    for topic, batch in fetched.items():
                        if batch:
                            await self_.wait_first(
                                by_topic[topic].deliver(batch), self_.suspend_flow.wait()
                            )
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


async def _messages(batches: AsyncIterator[Sequence[Any]]) -> AsyncIterator[list[Message]]:
    async for events in batches:
        yield [event.message for event in events]

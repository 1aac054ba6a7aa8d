"""Delivery a fetch at a time (agents.batches) on the worker's Faust app, without a broker.

The integration tests run every record of both stages of a real worker through it, across
restarts and rebalances; these pin down its parts: the Faust version it copies,
acknowledgement, what a rebalance drops, and the fetch loop's split between the topics.
Faust's own delivery, where it is not installed, is what test_agents.py's test contexts use.
"""

import asyncio
import gc
import hashlib
import inspect
import logging

import faust
import pytest
from faust.transport.consumer import Consumer
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from agents import batches as batches_module
from tests.unit.conftest import make_app

# sha256 of faust-streaming 0.15.3's Consumer._drain_messages, the loop agents.batches copies.
DRAIN_MESSAGES_SHA256 = "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417"
# sha256 of its Consumer.wait_empty, which agents.batches replaces with a copy.
WAIT_EMPTY_SHA256 = "e4662fe24f094819add590b2d75f233840e77823b432aea6504539768572102f"


def message(topic: str, partition: int, offset: int, generation: int = 0) -> ConsumerMessage:
    return ConsumerMessage(
        topic, partition, offset, 0.0, 0, [], None, b"{}", None, generation_id=generation
    )


@pytest.fixture
def batches(app):
    return installed(app)


def installed(app):
    """Both stages' batches installed; stage 1's returned."""
    b = app.spread_ingest.batches
    assert batches_module.install(app, [b, app.spread_counters.batches])
    app.topics._acking_topics.add("posts")  # the agent's subscription does this in a worker
    app.consumer_generation_id = 0
    return b


def taking(b):
    return b.take(None, 256, 0.2)  # once installed, the agent's stream is not read


async def next_batch(it):
    return await asyncio.wait_for(it.__anext__(), 1)


def test_it_copies_the_fetch_loop_of_the_pinned_faust():
    assert faust.__version__ == batches_module.FAUST_VERSION
    source = inspect.getsource(Consumer._drain_messages)
    assert hashlib.sha256(source.encode()).hexdigest() == DRAIN_MESSAGES_SHA256


def test_it_copies_the_wait_for_records_in_hand_of_the_pinned_faust():
    source = inspect.getsource(Consumer.wait_empty)
    assert hashlib.sha256(source.encode()).hexdigest() == WAIT_EMPTY_SHA256


def test_another_faust_version_keeps_fausts_delivery(app, monkeypatch, caplog):
    b = app.spread_ingest.batches
    stock = app.consumer._drain_messages
    monkeypatch.setattr(faust, "__version__", "0.16.0")
    with caplog.at_level(logging.WARNING, logger="agents.batches"):
        assert not batches_module.install(app, [b])
    assert not b.installed
    assert app.consumer._drain_messages == stock
    assert "wait_empty" not in vars(app.consumer)
    assert "0.16.0" in caplog.text


async def test_a_batch_is_acknowledged_when_the_next_one_is_asked_for(app, batches):
    consumer = app.consumer
    first = [message("posts", 0, 0), message("posts", 1, 0)]
    second = [message("posts", 0, 1)]
    await batches.deliver(first)
    assert not consumer.unacked  # queued: a rebalance clears it rather than waiting for it
    it = taking(batches)
    assert await next_batch(it) == first
    assert set(consumer.unacked) == set(first)  # in hand: a rebalance waits for it
    await batches.deliver(second)
    assert not any(m.acked for m in first)  # still being processed
    assert await next_batch(it) == second
    assert all(m.acked for m in first) and not second[0].acked
    assert set(consumer.unacked) == set(second)
    assert consumer._acked[TP("posts", 0)] == [0]
    # Taken as a stream takes events, for Faust's check of partitions that stopped processing.
    assert set(app.monitor.stream_inbound_time) == {TP("posts", 0), TP("posts", 1)}


async def test_queued_fetches_are_taken_together_in_order(app, batches):
    fetches = [[message("posts", p, o) for p in range(2)] for o in range(3)]
    for fetch in fetches:
        await batches.deliver(fetch)
    assert await next_batch(taking(batches)) == [m for f in fetches for m in f]


async def test_a_rebalance_drops_what_is_queued(app, batches):
    # Still in the fetch loop's hands when the rebalance starts: it must not be waited for.
    queued = [message("posts", 0, 0)]
    await batches.deliver(queued)
    # What Faust does when partitions are revoked (and the same generation assigned again:
    # only the clear, not the generation, keeps the queued record from being counted).
    app.flow_control.suspend()
    app.flow_control.clear()
    assert not app.consumer.unacked
    app.flow_control.resume()
    fresh = [message("posts", 1, 0)]
    await batches.deliver(fresh)
    assert await next_batch(taking(batches)) == fresh


async def test_records_fetched_before_a_rebalance_are_not_counted(app, batches):
    consumer = app.consumer
    app.consumer_generation_id = 2
    old = [message("posts", 0, 5, generation=1), message("posts", 1, 5, generation=1)]
    new = [message("posts", 2, 5, generation=2)]
    await batches.deliver(old + new)
    it = taking(batches)
    assert await next_batch(it) == new
    assert not any(m.acked for m in old)
    assert set(consumer.unacked) == set(new)


async def test_a_batch_taken_while_the_flow_is_stopped_is_dropped(app, batches):
    consumer = app.consumer
    dropped = [message("posts", 0, 0)]
    await batches.deliver(dropped)
    app.flow_control.suspend()  # a rebalance started after it was queued, not cleared yet
    it = taking(batches)
    task = asyncio.ensure_future(next_batch(it))
    await asyncio.sleep(0.05)
    assert not task.done()  # dropped, and waiting for the next one
    assert not set(consumer.unacked)
    task.cancel()


async def test_the_fetch_loop_delivers_each_stage_once_per_fetch_and_others_one_by_one(
    tmp_path, monkeypatch
):
    app = make_app(tmp_path, monkeypatch)
    stage1 = installed(app)
    stage2 = app.spread_counters.batches
    consumer = app.consumer
    posts = [message("posts", p, o) for o in range(3) for p in range(2)]
    deltas = [message(stage2.topic, 0, o) for o in range(2)]
    changelog = [message("test-agents-hashtag-totals-changelog", 0, o) for o in range(2)]
    fetch = [posts[0], deltas[0], changelog[0], *posts[1:4], deltas[1], *posts[4:], changelog[1]]
    one_by_one = []
    calls = 0

    async def getmany(timeout):
        nonlocal calls
        calls += 1
        if calls > 1:
            consumer._stopped.set()
            return
        for m in fetch:
            yield m.tp, m

    async def callback(m):
        one_by_one.append(m)

    monkeypatch.setattr(consumer, "getmany", getmany)
    monkeypatch.setattr(consumer, "callback", callback)
    fetcher = faust.Service()
    await asyncio.wait_for(consumer._drain_messages(fetcher), 5)
    assert one_by_one == changelog
    assert await next_batch(taking(stage1)) == posts
    assert await next_batch(taking(stage2)) == deltas
    assert consumer._read_offset[TP("posts", 1)] == 2


async def test_a_queue_under_pressure_stops_fetching_its_topic_until_it_drains(
    app, batches, monkeypatch
):
    consumer = app.consumer
    posts = {TP("posts", p) for p in range(2)}
    monkeypatch.setattr(consumer, "assignment", lambda: posts | {TP("other", 0)})
    consumer._set_active_tps(consumer.assignment())
    for o in range(batches.max_fetches):  # never waits for the agent
        await asyncio.wait_for(batches.deliver([message("posts", 0, o)]), 1)
    assert consumer._get_active_partitions() == {TP("other", 0)}
    assert consumer._buffered_partitions == posts  # what the fetch brought is still taken
    it = taking(batches)
    assert len(await next_batch(it)) == batches.max_fetches
    await batches.deliver([message("posts", 1, 0)])
    await next_batch(it)  # the agent is back at an empty queue
    task = asyncio.ensure_future(next_batch(it))
    await asyncio.sleep(0.05)
    assert consumer._get_active_partitions() == posts | {TP("other", 0)}
    task.cancel()


async def test_stage_2_waits_for_stage_1s_batch_in_hand_then_takes_all_it_sent(app, batches):
    stage_2 = app.spread_counters.batches
    topic = stage_2.topic
    ingest = app.spread_ingest
    first, second = [message(topic, 0, 0)], [message(topic, 1, 0)]
    # Stage 1 between batches: nothing to wait for.
    await stage_2.deliver(first)
    it = taking(stage_2)
    assert await next_batch(it) == first
    # Stage 1 busy with a batch: stage 2 waits for it, and takes what it sent meanwhile.
    ingest._between_batches.clear()
    await stage_2.deliver(second)
    task = asyncio.ensure_future(next_batch(it))
    await asyncio.sleep(0.05)
    assert not task.done()
    third = [message(topic, 2, 0)]
    await stage_2.deliver(third)
    ingest._between_batches.set()
    assert await task == second + third


async def test_stage_2_waits_for_stage_1_at_most_hold_seconds(app, batches):
    ingest = app.spread_ingest
    ingest._between_batches.clear()
    # Returns though stage 1 is still busy: stage 2 goes on after HOLD_SECONDS at most.
    await asyncio.wait_for(ingest.between_batches(0.05), 5)
    assert not ingest._between_batches.is_set()


@pytest.fixture
def collections(monkeypatch):
    """The generations of the garbage collections asked for."""
    asked: list[int] = []
    collect = gc.collect

    def recorded(generation: int = 2) -> int:
        asked.append(generation)
        return collect(generation)

    monkeypatch.setattr(gc, "collect", recorded)
    return asked


def stopping_app(tmp_path, monkeypatch):
    """An app made in the test's own event loop (the wait's futures are the consumer's), both
    stages' batches installed; its commits do nothing (there is no broker)."""
    app = make_app(tmp_path, monkeypatch)

    async def committed(*args, **kwargs):
        return True

    monkeypatch.setattr(app.consumer, "commit", committed)
    monkeypatch.setattr(app.consumer, "commit_and_end_transactions", committed)
    return app, installed(app)


async def waited(task: asyncio.Task, seconds: float) -> None:
    """``task`` done within ``seconds`` (a liveness bound: Faust's wait for an acknowledgement
    swallows a cancellation, so asyncio.wait_for could not end it)."""
    await asyncio.wait([task], timeout=seconds)
    assert task.done()
    task.result()


async def test_a_rebalance_waits_for_the_batch_in_hand_with_few_full_collections(
    tmp_path, monkeypatch, collections
):
    app, batches = stopping_app(tmp_path, monkeypatch)
    monkeypatch.setattr(batches_module, "FULL_COLLECTION_EVERY", 3)
    in_hand = [message("posts", 0, 0)]
    await batches.deliver(in_hand)
    it = taking(batches)
    assert await next_batch(it) == in_hand
    waiting = asyncio.ensure_future(app.consumer.wait_empty())
    while len(collections) < 3 and not waiting.done():  # a wait of up to a second each
        await asyncio.sleep(0.05)
    assert not waiting.done()
    # Faust collects every generation before each wait: with the tables' millions of
    # objects, seconds each time.
    assert collections[:3] == [1, 1, 2]
    # The agent asks for its next batch, which acknowledges this one (and none comes: the
    # flow is stopped while partitions are revoked).
    asking = asyncio.ensure_future(it.__anext__())
    await waited(waiting, 5)
    assert in_hand[0].acked
    asking.cancel()


async def test_a_stop_commits_what_is_acknowledged_and_leaves_the_batch_in_hand(
    tmp_path, monkeypatch, collections
):
    app, batches = stopping_app(tmp_path, monkeypatch)
    commits = []

    async def committed(*args, **kwargs):
        commits.append(set(app.consumer._acked))
        return True

    monkeypatch.setattr(app.consumer, "commit_and_end_transactions", committed)
    done = [message("posts", 0, 0)]
    in_hand = [message("posts", 0, 1)]
    await batches.deliver(done)
    it = taking(batches)
    assert await next_batch(it) == done
    await batches.deliver(in_hand)
    assert await next_batch(it) == in_hand  # and acknowledges the first batch
    app._stopped.set()  # what App.stop does before it stops the consumer
    await waited(asyncio.ensure_future(app.consumer.wait_empty()), 5)
    # Read again at the next start, as after a kill; the first batch's offset is committed.
    assert done[0].acked and not in_hand[0].acked
    assert commits == [{TP("posts", 0)}]
    assert collections == []


async def test_a_record_left_unacknowledged_in_a_cycle_does_not_hold_up_a_rebalance(
    tmp_path, monkeypatch, collections
):
    app, batches = stopping_app(tmp_path, monkeypatch)
    monkeypatch.setattr(batches_module, "FULL_COLLECTION_EVERY", 2)
    # What a crashed agent may leave: a record taken, never acknowledged, and referred to
    # only by a reference cycle.
    left = message("posts", 0, 0)
    await batches.deliver([left])
    it = taking(batches)
    assert await next_batch(it) == [left]
    await it.aclose()  # the agent's batches, gone without asking for the next one
    left.headers = [left]
    gc.collect(2)  # old enough for only a full collection to free it
    del left
    assert app.consumer.unacked
    await waited(asyncio.ensure_future(app.consumer.wait_empty()), 10)
    assert not app.consumer.unacked
    assert collections[-1] == 2

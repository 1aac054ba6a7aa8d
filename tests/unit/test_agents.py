"""Agents in Faust's in-memory test context: no broker, the agents' own logic only."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace

import faust
import orjson
import pytest

from agents import ingest as ingest_module
from agents.counters import children_of, counts_of, regions_of
from agents.ingest import BATCH_SECONDS, slices
from pipeline import deltas as wire
from pipeline.aggregate import summarise
from pipeline.events import ENVELOPE_FORMAT, ENVELOPE_HEADER


@contextlib.asynccontextmanager
async def counters_context(app) -> AsyncIterator:
    """The counters agent's test context, left only once the agent has applied and written
    every record put. ``put`` returns when a record enters the stream, not when the agent is
    done with it, and leaving the context stops the agent: a batch still being applied (it
    gives the event loop turns, agents.turns) would be cancelled and its records lost."""
    counters, writer = app.spread_counters, app.spread_writer
    taken: list[int] = []
    written: list[int] = []  # the highest offset taken, as each write ends

    def check_offsets(read: list[tuple[int, int]]) -> None:
        taken.extend(offset for _, offset in read)
        type(counters).check_offsets(counters, read)

    async def write(*groups):  # type: ignore[no-untyped-def]
        n = await type(writer).write(writer, *groups)
        written.append(max(taken, default=-1))
        return n

    counters.check_offsets, writer.write = check_offsets, write
    try:
        async with counters.agent.test_context() as agent:
            yield agent
            deadline = time.monotonic() + 60  # liveness only: a stuck agent fails, not a slow one
            while not written or written[-1] < agent.sent_offset - 1:
                assert time.monotonic() < deadline, "the agent did not apply every record put"
                await asyncio.sleep(0.01)
    finally:
        del counters.check_offsets, writer.write


async def put_record(agent, ranges: list[tuple[int, int, int]], *events: dict) -> None:
    """What stage 1 sends for a batch covering ``ranges``: one delta per target partition."""
    s = summarise(b"\n".join(orjson.dumps(e) for e in events))
    for target, tags in wire.split_by_partition(s.tags, 4).items():
        await agent.put(wire.encode([wire.entry(ranges, s.max_ts, tags)]), partition=target)


async def test_a_delta_split_into_records_applies_as_the_whole_would(app):
    counters = app.spread_counters
    events = [
        {"id": str(i), "ts": 60.0 + i, "region": "FR", "hashtags": [f"t{i}", "metoo"]}
        for i in range(500)
    ]
    s = summarise(b"\n".join(orjson.dumps(e) for e in events))
    tags = wire.split_by_partition(s.tags, 4)[0]
    entries = [wire.entry([(0, 0, 9)], s.max_ts, tags)]
    records = wire.encode_records(entries, max_bytes=2048)
    assert len(records) > 3
    async with counters_context(app) as agent:
        for value in records:
            await agent.put(value, partition=0)
        for value in records:  # redelivered: skipped, part by part
            await agent.put(value, partition=0)
    expected = {t: d[0] for t, d in tags.items()}
    got = {t: counters.totals.data[t]["n"] for t in expected}
    assert got == expected
    assert counters.overlaps == 0


async def test_counters_apply_deltas_once(app):
    counters = app.spread_counters
    ev = {"id": "1", "ts": 125.0, "region": "FR", "hashtags": ["#MeToo", "balancetonporc"]}
    async with counters_context(app) as agent:
        await put_record(agent, [(0, 7, 7)], ev)
        await put_record(agent, [(0, 7, 7)], ev)  # redelivered: skipped
        await put_record(agent, [(1, 0, 0)], {**ev, "region": "US", "ts": 10.0})
        # One batch over two source partitions, then its redelivery: applied once.
        await put_record(agent, [(0, 8, 9), (2, 0, 4)], ev, {**ev, "ts": 130.0})
        await put_record(agent, [(0, 8, 9), (2, 0, 4)], ev, {**ev, "ts": 130.0})
    metoo = counters.totals.data["metoo"]
    assert metoo["n"] == 4
    assert metoo["r"] == {"FR": 3, "US": 1}
    assert metoo["f"] == {"FR": 125.0, "US": 10.0}
    assert metoo["m"] == {"0": 9, "1": 0, "2": 4}
    assert counters.minute_count("metoo", 120) == 3
    assert counters.minute_count("metoo", 0) == 1
    assert counters.minute_count("metoo", 60) == 0
    assert counters.totals.data["balancetonporc"]["n"] == 4
    assert counters.overlaps == 0
    # Every stored value went to its hashtag's changelog partition, last write = stored value.
    last = {}
    for topic, partition, key, value in list(app.changelog_producer.records()):
        tag = key if isinstance(key, str) else key[0]
        assert partition == wire.partition_for(tag, 4), (topic, key)
        last[(topic, str(key))] = value
    assert last[("test-agents-hashtag-totals-changelog", "metoo")] == metoo


async def test_counters_keep_children_per_minute_and_read_old_deltas(app):
    counters = app.spread_counters
    post = {"id": "1", "ts": 125.0, "region": "FR", "hashtags": ["metoo"]}
    reply = {**post, "id": "2", "ts": 130.0, "parent": "1"}
    async with counters_context(app) as agent:
        await put_record(agent, [(0, 0, 0)], post, reply)
        await put_record(agent, [(0, 0, 0)], reply)  # redelivered: skipped, children too
        # Deltas of before 2026-12-01, minutes as lists: one written before children were
        # counted (four fields, posts only), one with every field (seven).
        target = wire.partition_for("metoo", 4)
        four = [[[0, 1, 1]], 131.0, {"metoo": [1, {"FR": 1}, [[120, 1]], {"FR": 131.0}]}]
        await agent.put(wire.encode([four]), partition=target)
        seven = [
            [[0, 2, 3]],
            190.0,
            {"metoo": [3, {"FR": 1, "US": 2}, [[180, 3]], {"FR": 190.0, "US": 185.0},
                       [[180, 2]], ["u1"], [[180, "FR", 1], [180, "US", 2]]]},
        ]  # fmt: skip
        await agent.put(wire.encode([seven]), partition=target)
    keys = counters.recent_keys(190.0)
    assert counters.recent_counts("metoo", keys)[:3] == [3, 3, 0]
    buckets = counters.recent_buckets("metoo", keys)
    assert counts_of(buckets)[:3] == counters.recent_counts("metoo", keys)[:3]
    assert children_of(buckets)[:3] == [2, 1, 0]
    # The four fields' post has no region in its minute, the seven fields' posts have theirs.
    assert regions_of(buckets)[:3] == [{"FR": 1, "US": 2}, {"FR": 2}, {}]
    assert counters.totals.data["metoo"]["n"] == 6


async def test_a_row_skips_an_entry_its_total_holds_and_counts_one_it_does_not(app):
    counters = app.spread_counters
    hour = 3600.0
    a = {"id": "a", "ts": 10 * hour, "hashtags": ["t"]}
    b = {"id": "b", "ts": 12 * hour, "hashtags": ["t"]}
    async with counters_context(app) as agent:
        await put_record(agent, [(0, 0, 0)], a)
        await put_record(agent, [(1, 0, 0)], b)
        # Both records again, in one entry: the total holds it, the row of a's hour holds
        # only its source partition 0.
        await put_record(agent, [(0, 0, 0), (1, 0, 0)], a, b)
    assert counters.overlaps == 0
    assert counters.minute_count("t", int(10 * hour)) == 1
    # With the total lost (a crash that kept the row's write), the entry is new to it: the
    # rows that hold part of it say so.
    del counters.totals.data["t"]
    async with counters_context(app) as agent:
        await put_record(agent, [(0, 0, 0), (1, 0, 0)], a, b)
    assert counters.overlaps == 2
    assert counters.minute_count("t", int(10 * hour)) == 1
    assert counters.minute_count("t", int(12 * hour)) == 1


async def test_recent_posts_kept_per_batch_equal_a_recount_from_the_rows(app):
    """Stage 2 does not walk the minutes of hours wholly behind RecentPosts' span; what it
    keeps must still be what the stored rows say."""
    counters = app.spread_counters
    hour = 3600.0
    times = [30 * hour + 50, 27 * hour + 10, 30 * hour - 400, 29 * hour + 3500, 30 * hour + 900]
    for i, ts in enumerate(times):  # a batch each, as the agent's body applies one
        events = [
            {"id": f"{i}-{k}", "ts": ts + k * 7, "hashtags": [f"t{k % 3}", "metoo"]}
            for k in range(40)
        ]
        s = summarise(b"\n".join(orjson.dumps(e) for e in events))
        batch = [
            (target, wire.decode(wire.encode([wire.entry([(0, i, i)], s.max_ts, tags)])))
            for target, tags in wire.split_by_partition(s.tags, 4).items()
        ]
        totals, rows = counters.apply_batch(batch)
        await app.spread_writer.write((counters.totals, totals), (counters.hours.table, rows))
    kept = dict(counters.recent._posts)
    held = counters.buckets_held
    assert kept and counters.recent.newest == int((30 * hour + 900 + 39 * 7) // 60 * 60)
    counters._recount(counters.totals.data)
    assert counters.recent._posts == kept
    assert counters.buckets_held == held


async def test_a_batch_applied_a_record_at_a_time_changes_nothing_a_scrape_reads_until_written(
    app,
):
    """The agent lets scrapes in between a batch's records (Counters.applying): until the
    batch is written, they must read what was there before it, counts beside the store
    included, and after it, what applying it whole gives."""
    counters = app.spread_counters
    owned = frozenset(range(4))

    def record(i: int, *tags: str) -> list[tuple[int, list[wire.Entry]]]:
        s = summarise(orjson.dumps({"id": str(i), "ts": 60.0 * i, "hashtags": list(tags)}))
        return [
            (target, wire.decode(wire.encode([wire.entry([(0, i, i)], s.max_ts, part)])))
            for target, part in wire.split_by_partition(s.tags, 4).items()
        ]

    totals, rows = counters.apply_batch(record(0, "a", "b"))
    await app.spread_writer.write((counters.totals, totals), (counters.hours.table, rows))
    before = (
        counters.owned_stats(owned),
        dict(counters.recent._posts),
        {t: dict(v) for t, v in counters.totals.data.items()},
        counters.buckets_held,
    )
    steps = counters.applying(record(1, "a", "c") + record(2, "d") + record(3, "b", "e"))
    assert next(steps) is None and next(steps) is None  # two records in, not written
    now = (
        counters.owned_stats(owned),
        dict(counters.recent._posts),
        {t: dict(v) for t, v in counters.totals.data.items()},
        counters.buckets_held,
    )
    assert now == before
    while (done := next(steps)) is None:
        pass
    await app.spread_writer.write((counters.totals, done[0]), (counters.hours.table, done[1]))
    assert counters.owned_stats(owned) == (5, 7)
    assert {t: v["n"] for t, v in counters.totals.data.items()} == {
        "a": 2,
        "b": 2,
        "c": 1,
        "d": 1,
        "e": 1,
    }


async def test_buckets_expire_in_event_time_by_whole_hours_with_tombstones(app):
    counters = app.spread_counters
    owned = {faust.types.TP("test-agents-hashtag-deltas", p) for p in range(4)}
    app.assignor.assigned_actives = lambda: owned
    hour = 3600.0
    start = 1_508_000_000.0  # 53 min 20 s into its hour
    times = [start, start + 60, start + 1300, start + 2 * hour]
    async with counters_context(app) as agent:
        for i, ts in enumerate(times):
            await put_record(agent, [(0, i, i)], {"id": str(i), "ts": ts, "hashtags": ["old"]})
        # Far enough later (retention: grace 1 h + R_t's 7 h span) and past a sweep.
        late = start + counters.retention + 20 * 60
        await put_record(agent, [(0, 4, 4)], {"id": "4", "ts": late, "hashtags": ["new"]})
        await put_record(agent, [(0, 5, 5)], {"id": "5", "ts": late + 700, "hashtags": ["new"]})
    cutoff = late + 700 - counters.retention
    rows = counters.hours.table.data
    minutes = {(tag, int(m)) for (tag, _rng), row in rows.items() for m in row[1]}
    old = {("old", int(ts // 60 * 60)) for ts in times}
    gone = {("old", int(start // 60 * 60)), ("old", int((start + 60) // 60 * 60))}
    assert not minutes & gone  # their whole hour is older than the watermark minus retention
    # Older than the cutoff itself, but its hour is not over by then: kept with the hour.
    assert int((start + 1300) // 60 * 60) + 60 <= cutoff
    assert old - gone <= minutes
    assert counters.buckets_expired == 2
    assert counters.buckets_held == sum(len(row[1]) for row in rows.values()) == len(minutes)
    tombstones = [r for r in list(app.changelog_producer.records()) if r[3] is None]
    assert [(key[0], int(key[1][0])) for _, _, key, _ in tombstones] == [
        ("old", int(start // hour * hour))
    ]
    assert counters.totals.data["old"]["n"] == 4  # totals never expire


@pytest.fixture
def sent(monkeypatch):
    """Records what agents send to topics: the test context has no broker to produce to."""
    calls = []

    async def fake_send(self, **kwargs):
        calls.append((self.get_topic_name(), kwargs))

    monkeypatch.setattr(faust.topics.Topic, "send", fake_send)
    return calls


async def test_ingest_counts_accepts_and_rejects(app, sent):
    ingest = app.spread_ingest
    value = b"\n".join([orjson.dumps({"id": "1", "ts": 60.0, "hashtags": ["a"]}), b"{nope", b"[1]"])
    async with ingest.agent.test_context() as agent:
        # put() returns once the record is buffered; waiting past the batch window makes
        # each record a batch of its own.
        await agent.put(value, partition=2)
        await asyncio.sleep(BATCH_SECONDS * 3)
        agent.sent_offset = 0  # the same record again, as after a crash before the commit
        await agent.put(value, partition=2)
        await asyncio.sleep(BATCH_SECONDS * 3)
        await agent.put(value, partition=2)  # the next record counts
        await asyncio.sleep(BATCH_SECONDS * 3)
    accepted, rejected, wm, late = ingest.totals({2})
    assert accepted == 2
    assert rejected["invalid_json"] == 2 and rejected["not_object"] == 2
    assert wm == 60.0 and late == 0
    deltas = [kw for topic, kw in sent if topic == "test-agents-hashtag-deltas"]
    assert len(deltas) >= 1
    ranges = sorted(tuple(r) for d in deltas for e in wire.decode(d["value"]) for r in e[0])
    # The redelivered record is sent again, as an entry of its own; stage 2 skips it.
    assert ranges == [(2, 0, 0), (2, 0, 0), (2, 1, 1)]
    assert all(d["partition"] == wire.partition_for("a", 4) for d in deltas)
    dead = [kw for topic, kw in sent if topic == "posts-rejected"]
    assert len(dead) == 4  # the redelivered record's rejects are not dead-lettered again
    assert [d["value"] for d in dead[:2]] == [b"{nope", b"[1]"]
    assert dict(dead[0]["headers"])["reason"] == b"invalid_json"


async def test_ingest_sends_one_entry_per_batch_across_source_partitions(app, sent):
    ingest = app.spread_ingest
    value = orjson.dumps({"id": "1", "ts": 60.0, "region": "FR", "hashtags": ["a", "b"]})
    async with ingest.agent.test_context() as agent:
        for sp in (1, 3, 1):
            await agent.put(value, partition=sp)
        await asyncio.sleep(BATCH_SECONDS * 3)
    entries = sent_entries(sent)
    # However the records were batched, a batch's entry names its range in every source
    # partition it read, and every record is summed once.
    assert sorted({r[0] for e in entries for r in e[0]}) == [1, 3]
    assert all(len({r[0] for r in e[0]}) == len(e[0]) for e in entries)  # one range per sp
    assert sum(e[2]["a"][0] for e in entries if "a" in e[2]) == 3
    assert ingest.totals({1, 3})[0] == 3


async def test_the_worker_consumer_waits_at_most_100_ms_for_an_idle_fetch(app):
    # Faust 0.15.3 hard-codes 1.5 s (agents.app.install_short_fetch_wait says why it matters).
    thread = app.consumer._thread
    consumer = thread._create_worker_consumer(app.transport)
    assert consumer._fetch_max_wait_ms == 100


def sent_entries(sent: list) -> list:
    """The delta entries stage 1 sent, in order."""
    return [
        e
        for topic, kw in sent
        if topic == "test-agents-hashtag-deltas"
        for e in wire.decode(kw["value"])
    ]


async def put_at_offsets(ingest, value: bytes, partition: int, offsets: tuple[int, ...]) -> None:
    """Stage 1 reads ``value`` at these offsets of ``partition``, in this order, in one
    batch window (redeliveries and copies included)."""
    async with ingest.agent.test_context() as agent:
        for offset in offsets:
            agent.sent_offset = offset
            await agent.put(value, partition=partition)
        await asyncio.sleep(BATCH_SECONDS * 3)


def applied_posts(entries: list, tag: str) -> int:
    """What stage 2 makes of ``entries`` for one hashtag, in the order they were sent."""
    value = wire.new_total()
    for entry_ranges, _wm, tags in entries:
        ranges = wire.marked(entry_ranges)
        if tag in tags and wire.check(value["m"], ranges) == wire.APPLY:
            d = tags[tag]
            wire.merge_total(value, ranges, d[0], d[1], d[3])
    return value["n"]


async def test_ingest_reads_a_record_delivered_twice_in_one_batch_once(app, sent):
    # After a rebalance, a fetch from before Faust's seek back and one from after it can both
    # reach one batch: offsets 0 1 0 1 2. Sending the second copies as redeliveries, ahead of
    # the batch's entry, made stage 2 apply them and then skip the entry as partly applied,
    # losing offset 2.
    ingest = app.spread_ingest
    value = orjson.dumps({"id": "1", "ts": 60.0, "hashtags": ["a"]})
    await put_at_offsets(ingest, value, 2, (0, 1, 0, 1, 2))
    assert ingest.totals({2})[0] == 3
    entries = sent_entries(sent)
    assert [e[0] for e in entries] == [[[2, 0, 2]]]
    assert applied_posts(entries, "a") == 3
    assert ingest.gaps == 0


async def test_ingest_reports_a_record_that_skips_ahead(app, sent):
    ingest = app.spread_ingest
    value = orjson.dumps({"id": "1", "ts": 60.0, "hashtags": ["a"]})
    await put_at_offsets(ingest, value, 2, (0, 1, 5))
    assert ingest.gaps == 1


def test_counters_report_a_deltas_record_that_skips_ahead(app):
    counters = app.spread_counters
    counters.check_offsets([(0, 3), (0, 4), (1, 7), (0, 3), (0, 4)])  # back: a redelivery
    assert counters.gaps == 0
    counters.check_offsets([(0, 6)])  # 5 was never read
    assert counters.gaps == 1
    app.consumer_generation_id = 7  # a new generation starts where its seek put it
    counters.check_offsets([(1, 2), (0, 9)])
    assert counters.gaps == 1


async def test_seeking_back_to_committed_offsets_stops_the_flow_first(app, monkeypatch):
    # faust-streaming 0.15.3: recovery resumes the stream partitions, awaits this seek, then
    # clears the streams' queues; records fetched from the new position during the await
    # were dropped with the position past them (agents.app.install_reliable_seek_to_committed).
    consumer = app.consumer
    seen = []

    async def seek_to_committed():
        seen.append(consumer.flow_active)
        return {}

    monkeypatch.setattr(consumer._thread, "seek_to_committed", seek_to_committed)
    consumer.resume_flow()
    await consumer.perform_seek()
    assert seen == [False]


def test_a_batch_is_processed_in_slices_of_bounded_bytes():
    batch = [
        SimpleNamespace(partition=3, offset=i, value=b"x" * n, headers=[])
        for i, n in enumerate((3, 3, 3, 10, 1, 1))
    ]
    got = [[(sp, so, len(v)) for sp, so, v, _env in part] for part in slices(batch, max_bytes=6)]
    # In order, at most 6 bytes a slice unless one record alone is larger.
    assert got == [[(3, 0, 3), (3, 1, 3)], [(3, 2, 3)], [(3, 3, 10)], [(3, 4, 1), (3, 5, 1)]]


async def test_slices_of_one_batch_count_every_record_once(app, sent, monkeypatch):
    # A batch cut into slices of one record each, with a record delivered twice across
    # slices: the copy arrives after the first slice's progress and deltas, so it is a plain
    # redelivery, which stage 2 skips.
    monkeypatch.setattr(ingest_module, "SLICE_BYTES", 1)
    ingest = app.spread_ingest
    value = orjson.dumps({"id": "1", "ts": 60.0, "hashtags": ["a"]})
    await put_at_offsets(ingest, value, 2, (0, 1, 0, 1, 2))
    assert ingest.totals({2})[0] == 3
    entries = sent_entries(sent)
    assert len(entries) == 5  # one per slice
    assert applied_posts(entries, "a") == 3


@pytest.mark.parametrize(
    ("headers", "envelope"),
    [
        ([(ENVELOPE_HEADER, ENVELOPE_FORMAT)], True),  # as aiokafka gives them
        ([("trace", b"1"), [ENVELOPE_HEADER, ENVELOPE_FORMAT]], True),
        ({ENVELOPE_HEADER: ENVELOPE_FORMAT}, True),  # as Faust's test contexts give them
        ([(ENVELOPE_HEADER, b"other/1")], False),
        ({"trace": b"1"}, False),
        ([], False),
        (None, False),
    ],
)
def test_a_record_is_an_envelope_only_with_the_envelope_header(headers, envelope):
    assert ingest_module._is_envelope(headers) is envelope

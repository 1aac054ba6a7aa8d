"""The broker unreachable for 20 s mid-replay: worker and replay survive, nothing is lost."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.broker import EmbeddedBroker, free_port
from pipeline.offsets import true_end_offsets
from pipeline.settings import POSTS
from tests.groundtruth import compute
from tests.integration.conftest import SAMPLE, Worker, wait_for
from tests.integration.proxy import Proxy
from tests.integration.test_scaling import assert_exact, finish, merged, start_replay

pytestmark = pytest.mark.integration

OUTAGE_SECONDS = 20


async def posts_lines(bootstrap: str) -> list[bytes]:
    """Every event line in ``posts``, read back with a plain consumer."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(POSTS, p) for p in consumer.partitions_for_topic(POSTS) or ()]
        consumer.assign(tps)
        ends = await true_end_offsets(bootstrap, await consumer.end_offsets(tps))
        await consumer.seek_to_beginning(*tps)
        lines: list[bytes] = []
        while any([await consumer.position(tp) < (ends[tp] or 0) for tp in tps]):
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for r in records:
                    lines.extend(x for x in r.value.split(b"\n") if x)
        return lines
    finally:
        await consumer.stop()


def test_broker_outage_mid_replay_loses_nothing(tmp_path):
    truth = compute([SAMPLE])
    front = free_port()
    broker = EmbeddedBroker(
        port=free_port(), advertised_port=front, log_path=str(tmp_path / "broker.log")
    )
    with broker, Proxy(front, broker.port) as proxy:
        worker = Worker(broker=broker.bootstrap, workdir=tmp_path).start()
        try:
            replay = start_replay(broker, "--speed", "3000", "--envelope", "50", str(SAMPLE))
            wait_for(
                lambda: sum(worker.scrape().get("spread_events_total", {}).values()) > 500,
                60,
                "the worker to count some events",
            )
            proxy.cut()
            time.sleep(2)  # what was fetched before the cut is processed
            during = worker.scrape().get("spread_events_total")
            time.sleep(OUTAGE_SECONDS - 2)
            assert worker.proc.poll() is None, "the worker died during the outage"
            # The outage was real: nothing new reached the worker while it lasted; the
            # worker says so in a metric and in one log line.
            m = worker.scrape()
            assert m.get("spread_events_total") == during
            assert m["spread_broker_up"][()] == 0
            assert m["spread_broker_outages_total"][()] == 1
            proxy.restore()
            finish(replay)
            # A produce request in flight when the connection drops has an unknown outcome:
            # the replay's producer sends it again, and if the broker had appended it, posts
            # holds those events twice. The embedded broker has no idempotent producer to
            # prevent that (Kafka has). So the worker must count exactly what posts holds,
            # and posts must hold every event of the file: nothing lost, on either side.
            sent = tmp_path / "posts.jsonl"
            sent.write_bytes(b"\n".join(asyncio.run(posts_lines(broker.bootstrap))) + b"\n")
            held = compute([sent])
            assert held.accepted >= truth.accepted
            assert all(held.posts[tag] >= n for tag, n in truth.posts.items())
            result = wait_for(lambda: merged([worker], held), 120, "the worker to catch up")
            assert_exact(result, held)
            # The probe runs every 2 s: catching up can be quicker than its next run.
            wait_for(
                lambda: worker.scrape()["spread_broker_up"][()] == 1, 30, "the probe to see it"
            )
            log = "".join(p.read_text() for p in tmp_path.glob("worker-*.log"))
            assert log.count("broker unreachable") == 1 and "reachable again" in log
        finally:
            worker.stop()

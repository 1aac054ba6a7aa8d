"""The broker unreachable for 20 s mid-replay: worker and replay survive, nothing is lost."""

from __future__ import annotations

import time

import pytest

from pipeline.broker import EmbeddedBroker, free_port
from tests.groundtruth import compute
from tests.integration.conftest import SAMPLE, Worker, wait_for
from tests.integration.proxy import Proxy
from tests.integration.test_scaling import assert_exact, finish, merged, start_replay

pytestmark = pytest.mark.integration

OUTAGE_SECONDS = 20


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
            result = wait_for(lambda: merged([worker], truth), 120, "the worker to catch up")
            assert_exact(result, truth)
            # The probe runs every 2 s: catching up can be quicker than its next run.
            wait_for(
                lambda: worker.scrape()["spread_broker_up"][()] == 1, 30, "the probe to see it"
            )
            log = "".join(p.read_text() for p in tmp_path.glob("worker-*.log"))
            assert log.count("broker unreachable") == 1 and "reachable again" in log
        finally:
            worker.stop()

"""Fixtures shared by the unit tests of the agents."""

import pytest

from agents.app import Topology, create_app
from pipeline.settings import WorkerSettings
from tests.unit.fake_producer import Producer


@pytest.fixture
def app(tmp_path, monkeypatch):
    """The worker's Faust app, finalised with its flow resumed and not started: no broker."""
    return make_app(tmp_path, monkeypatch)


def make_app(tmp_path, monkeypatch):
    """The ``app`` fixture's app; made inside a test's coroutine, its services (the consumer's
    events) belong to that test's event loop."""
    settings = WorkerSettings(broker="localhost:1", app_id="test-agents", data_dir=str(tmp_path))
    app = create_app(settings, Topology(posts=4, deltas=4))
    app.finalize()
    app.flow_control.resume()
    # What the agents write to changelogs goes to a stand-in producer: there is no broker.
    producer = Producer()
    monkeypatch.setattr(app.spread_writer, "_producer", producer)
    app.changelog_producer = producer
    return app

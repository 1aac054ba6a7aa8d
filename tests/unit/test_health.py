"""The broker probe's verdicts: reachable, unreachable, or not known because the loop was busy."""

from __future__ import annotations

import asyncio
import socket
import time

from agents import health
from agents.health import BrokerProbe


class App:
    def timer(self, interval: float):
        return lambda fn: fn


def probe_of(port: int) -> BrokerProbe:
    return BrokerProbe(App(), f"127.0.0.1:{port}")  # type: ignore[arg-type]


async def test_a_listening_broker_is_reachable():
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        assert await probe_of(port).reachable() is True


async def test_a_closed_port_is_unreachable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        assert await probe_of(port).reachable() is False


async def test_a_timeout_is_an_outage_on_an_idle_loop_and_unknown_on_a_busy_one(monkeypatch):
    async def hangs(host, port):
        await asyncio.sleep(10)

    monkeypatch.setattr(health.asyncio, "open_connection", hangs)
    assert await probe_of(9).reachable(timeout=0.05) is False

    async def busy_then_hangs(host, port):
        time.sleep(0.5)  # a long batch holding the event loop, past the timeout and LATE
        await asyncio.sleep(10)

    monkeypatch.setattr(health.asyncio, "open_connection", busy_then_hangs)
    assert await probe_of(9).reachable(timeout=0.05) is None


async def test_a_busy_loop_is_not_an_outage_but_a_refused_connection_is(monkeypatch):
    async def busy_then_hangs(host, port):
        time.sleep(0.5)
        await asyncio.sleep(10)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        probe = probe_of(s.getsockname()[1])
        with monkeypatch.context() as m:
            m.setattr(health.asyncio, "open_connection", busy_then_hangs)
            await probe.round(timeout=0.05)
        assert probe.up is True and probe.outages == 0
        await probe.round(timeout=0.05)  # the real thing: refused
        assert probe.up is False and probe.outages == 1

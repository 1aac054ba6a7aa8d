"""Can this worker reach its broker? A probe, a log line per change, two metrics.

aiokafka logs every failed connection attempt (several a second); users need one line when
the broker goes away, one when it is back, and a metric to alert on. A Faust timer opens a
TCP connection to the bootstrap servers every ``INTERVAL`` seconds: ``spread_broker_up`` is 1
while one of them answers, and ``spread_broker_outages_total`` counts the times it stopped. A
round whose only failures are timeouts that fired late (the event loop was busy) changes
nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time

import faust

log = logging.getLogger("spread.health")

INTERVAL = 2.0
TIMEOUT = 1.0
# A timeout that fires this much later than TIMEOUT says the event loop was busy (a long
# batch), not that the broker is gone: the connection may well have been made meanwhile.
LATE = 0.25


class BrokerProbe:
    def __init__(self, app: faust.App, bootstrap: str) -> None:
        self.servers = [s.rsplit(":", 1) for s in bootstrap.split(",")]
        self.up = True
        self.outages = 0
        self.down_since: float | None = None

        @app.timer(INTERVAL)
        async def probe() -> None:
            await self.round()

    async def round(self, timeout: float = TIMEOUT) -> None:
        ok = await self.reachable(timeout)
        if ok is not None:
            self.observe(ok)

    async def reachable(self, timeout: float = TIMEOUT) -> bool | None:
        """True when a server accepts a connection, False when none does, None when that
        cannot be told: a timeout that fired late because the event loop was busy. Under a
        saturated worker that used to report outages of a broker that was up."""
        loop = asyncio.get_running_loop()
        inconclusive = False
        for host, port in self.servers:
            started = loop.time()
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, int(port)), timeout
                )
            except TimeoutError:  # before OSError, of which it is a subclass
                inconclusive |= loop.time() - started > timeout + LATE
                continue
            except OSError:
                continue
            writer.close()
            return True
        return None if inconclusive else False

    def observe(self, ok: bool) -> None:
        if ok and not self.up:
            took = time.monotonic() - (self.down_since or time.monotonic())
            log.warning("broker reachable again after %.0f s", took)
            self.down_since = None
        elif not ok and self.up:
            self.outages += 1
            self.down_since = time.monotonic()
            log.warning(
                "broker unreachable (%s): counting resumes when it is back",
                ",".join(":".join(s) for s in self.servers),
            )
        self.up = ok

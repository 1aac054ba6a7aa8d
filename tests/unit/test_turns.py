"""A scrape served between two stretches of stage-2 work, not across several of them."""

from __future__ import annotations

import asyncio

from aiohttp import web

from agents.turns import ITERATIONS, give_turn
from pipeline.broker import free_port


async def chunks_until_served(iterations: int) -> int:
    """Stretches of blocking work, a turn of ``iterations`` between two, until a request
    sent before the first is answered by an aiohttp server on the same loop (Faust's web
    server is aiohttp): how many stretches it waited."""

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(text="spread_events_total 1\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    answered: list[bytes] = []

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answered.append(await reader.read())
        writer.close()

    try:
        task = asyncio.create_task(client())
        await asyncio.sleep(0)  # the client connects and sends first, as a scraper would
        stretches = 0
        while not answered and stretches < 100:
            sum(range(20_000))  # a stretch of work: the loop serves nothing meanwhile
            stretches += 1
            await give_turn(iterations)
        await task
        assert answered[0].startswith(b"HTTP/1.1 200") and b"spread_events_total" in answered[0]
        return stretches
    finally:
        await runner.cleanup()


async def test_a_request_is_served_within_one_turn() -> None:
    assert await chunks_until_served(ITERATIONS) == 1


async def test_one_iteration_per_turn_makes_a_request_wait_several_stretches() -> None:
    # What the turns replaced: each step of serving a request (accept, read, respond) waited
    # for a stretch of work to end.
    assert await chunks_until_served(1) > 2

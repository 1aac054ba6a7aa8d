"""Turns of the event loop for the scrapes, from long stretches of work on it.

Stage 2 applies and writes a batch for up to a second or more (a few seconds, the last batch
after a million-hashtag load), on the event loop that also serves ``/metrics``. It gives the
loop a turn every ``YIELD_SECONDS`` (:mod:`agents.counters`, :mod:`agents.changelog`). One
``await asyncio.sleep(0)`` is one iteration of the loop, and a scrape needs several (accept
the connection, read the request, run the view, write the response): each waited for the
next turn, so a scrape took one turn's gap per step: 0.35-0.4 s while the last batch of a
million-hashtag load was written, 0.37-0.56 s (median) under ``make bench``'s load.
:func:`give_turn` runs the loop ``ITERATIONS`` times instead, enough for a request to go from
its connection to its response within one turn (12 in ``tests/unit/test_turns.py``, its
client's steps on the same loop included). Idle, a turn costs ~50 µs: 0.1 % of a core.
"""

from __future__ import annotations

import asyncio

ITERATIONS = 16
# Stage 2's applying and encoding give the loop a turn at least this often, so that a scrape
# waits for a part of a batch, not all of it (a batch under load takes a second).
YIELD_SECONDS = 0.05


async def give_turn(iterations: int = ITERATIONS) -> None:
    for _ in range(iterations):
        await asyncio.sleep(0)

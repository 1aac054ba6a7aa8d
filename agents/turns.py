"""Turns of the event loop for the scrapes, from long stretches of work on it.

Stage 2 applies and writes a batch for up to a second or more (a few seconds, the last batch
after a million-hashtag load), and the signals' timer ranks thousands of hashtags, on the
event loop that also serves ``/metrics``. Such work is written in steps
(:mod:`pipeline.steps`), which :func:`run_in_turns` drives with a turn of the loop at least
every ``YIELD_SECONDS``.

One ``await asyncio.sleep(0)`` is one iteration of the loop, and a scrape needs several
(accept the connection, read the request, run the view, write the response): each waited for
the next turn, so a scrape took one turn's gap per step: 0.35-0.4 s while the last batch of a
million-hashtag load was written, 0.37-0.56 s (median) under ``make bench``'s load.
:func:`give_turn` runs the loop ``ITERATIONS`` times instead, enough for a request to go from
its connection to its response within one turn (12 in ``tests/unit/test_turns.py``, its
client's steps on the same loop included). Idle, a turn costs ~50 µs: 0.1 % of a core.
"""

from __future__ import annotations

import asyncio
from time import monotonic
from typing import TypeVar

from pipeline.steps import Steps

T = TypeVar("T")

ITERATIONS = 16
YIELD_SECONDS = 0.05  # of work at most between two turns


async def give_turn(iterations: int = ITERATIONS) -> None:
    for _ in range(iterations):
        await asyncio.sleep(0)


async def run_in_turns(steps: Steps[T], seconds: float = YIELD_SECONDS) -> T:
    """Every step, with a turn of the loop whenever ``seconds`` of them ran since the last;
    the result."""
    resumed = monotonic()
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value
        if monotonic() - resumed > seconds:
            await give_turn()
            resumed = monotonic()

"""Work in steps: a generator that yields None between two steps and returns its result.

Long computations that run on the worker's event loop (stage 2 applying a batch, the ranking
of the exported hashtags) are written this way so that the loop can serve a scrape between
two steps (:func:`agents.turns.run_in_turns`), while tests and callers that need the result
at once drive them with :func:`run_through`.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TypeVar

T = TypeVar("T")
Steps = Generator[None, None, T]


def run_through(steps: Steps[T]) -> T:
    """Every step at once; the result."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value

"""Limits on what one event may be: hostile or broken input costs bounded time and memory.

Each limit is a worker setting (``spread worker --help``) with the default below; an event
over a limit is rejected with its own reason, dead-lettered and counted, like any other
invalid event.

``max_event_bytes``     a line longer than this is rejected (``too_large``) before it is
                        decoded; its dead letter keeps the first ``max_event_bytes`` bytes
                        (header ``truncated`` = the original size), so a 10 MB line cannot
                        exceed the broker's record size.
``max_hashtags``        entries in ``hashtags`` (``too_many_hashtags``; option
                        ``--max-tags-per-post``); platforms allow a few dozen, 100 is generous.
``max_hashtag_chars``   characters of a hashtag after normalisation (``hashtag_too_long``):
                        NFKC can expand a character to 18, so this is checked after it.
``max_future_seconds``  ``ts`` later than the worker's clock plus this (``ts_out_of_range``);
                        ``ts`` before the epoch (negative) too. Replays of history are fine.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    max_event_bytes: int = 65_536
    max_hashtags: int = 100
    max_hashtag_chars: int = 140
    max_future_seconds: float = 86_400.0


DEFAULT_LIMITS = Limits()

"""Learning the generation interval from the stream: children timed against their parents.

Each event with hashtags may name a ``parent``. :class:`ParentClock` remembers the minute
bucket of a deterministic sample of events, those whose id ends with ``suffix`` (``"0"``: a
tenth of decimal ids such as tweet and toot ids, a sixteenth of hex ids, fewer of
alphanumeric ones), for ``horizon`` of event time; when a child names a remembered parent, the
lag ``child bucket − parent bucket`` goes into a
:class:`~pipeline.virality.generation.GenerationInterval`. Sampling parents by the last
character of their id does not bias the lags (it says nothing about when their children
come), costs one string comparison per event (a hash per event cost stage 1 a tenth of its
throughput), and bounds memory: at most a tenth of the ids of ``horizon`` of events, about
30 MB for six hours of a 13-million-event day.

What it cannot see: a child whose parent came before the worker started, was older than the
horizon, or was read later than the child (another partition behind this one); and with
several workers, pairs split between two of them. Each costs samples, not correctness:
lags are counted only for pairs seen in order, and the estimate uses the default
interval until ``MIN_SAMPLES`` lags were counted.
"""

from __future__ import annotations

from collections import deque

from pipeline.settings import SettingsError
from pipeline.virality.generation import (
    DISTRIBUTIONS,
    MAX_LAG_MINUTES,
    GenerationInterval,
    delay_weights_from_config,
)

SUFFIX = "0"
HORIZON_SECONDS = (MAX_LAG_MINUTES + 1) * 60
_EXPIRE_EVERY = 4096  # insertions between sweeps of expired ids


class ParentClock:
    def __init__(self, suffix: str = SUFFIX, horizon_seconds: float = HORIZON_SECONDS) -> None:
        self.suffix = suffix
        self.horizon = horizon_seconds
        self.interval = GenerationInterval()
        # id -> minute bucket, and the ids in insertion order, which is nearly event-time
        # order: expiry pops from the front of the deque and stops at the first id still
        # within the horizon. (Popping the front of the dict itself instead made every sweep
        # scan the dict's deleted slots from the start: quadratic, 73 % of the worker's time
        # by the 15th million event of metoo-2017.)
        self._minute: dict[str, int] = {}
        self._order: deque[tuple[int, str]] = deque()
        self._inserts = 0
        self._newest = 0

    def observe(self, event_id: str, ts: float, parent: str | None) -> None:
        """One accepted event: its id, event time and parent id (None for a cascade's start)."""
        minute = int(ts // 60)
        if parent is not None:
            parent_minute = self._minute.get(parent)
            if parent_minute is not None:
                self.interval.add(minute - parent_minute)
        if event_id.endswith(self.suffix):
            self._minute[event_id] = minute
            self._order.append((minute, event_id))
            if minute > self._newest:
                self._newest = minute
            self._inserts += 1
            if self._inserts % _EXPIRE_EVERY == 0:
                self._expire()

    def _expire(self) -> None:
        oldest = self._newest - self.horizon / 60
        remembered = self._minute
        order = self._order
        while order and order[0][0] < oldest:
            minute, event_id = order.popleft()
            if remembered.get(event_id) == minute:  # not seen again since, with a newer time
                del remembered[event_id]

    def __len__(self) -> int:
        return len(self._minute)


LEARNED = "learned"


def configured_weights(spec: str) -> tuple[float, ...] | None:
    """The worker's ``--generation-interval``: ``learned`` (None: a :class:`ParentClock`
    learns it) or ``gamma:MEAN_MINUTES:CV`` / ``lognormal:MEAN_MINUTES:CV``."""
    if spec == LEARNED:
        return None
    dist, _, rest = spec.partition(":")
    mean, _, cv = rest.partition(":")
    try:
        mean_minutes, cv_value = float(mean), float(cv)
    except ValueError:
        mean_minutes = cv_value = -1.0
    if dist not in DISTRIBUTIONS or not 0 < mean_minutes <= MAX_LAG_MINUTES or not cv_value > 0:
        raise SettingsError(
            f"--generation-interval {spec!r}: expected 'learned', or gamma:MEAN:CV or "
            f"lognormal:MEAN:CV with 0 < MEAN <= {MAX_LAG_MINUTES} minutes and CV > 0"
        )
    return tuple(delay_weights_from_config(dist, mean_minutes, cv_value))

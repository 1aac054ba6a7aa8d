"""A platform's phases in event time: R(t), the seed rate μ(t), and Poisson arrivals.

Phases follow each other from the scenario's start; the last one lasts to the end. Within a
phase the seed rate is constant, or changes geometrically from ``seeds_per_hour`` to
``seeds_per_hour_end``; either way it is multiplied by the daily cycle
``1 + amplitude·cos(2π (hour_utc - peak_hour) / 24)``.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable, Iterator

from pipeline.simulate.scenario import Platform, Scenario

HOUR = 3600.0
DAY = 86_400.0


class Timeline:
    """R and the seed rate (events per second, times ``multiplier``) of one platform."""

    def __init__(self, scenario: Scenario, platform: Platform, multiplier: float = 1.0) -> None:
        self.start = scenario.start
        self.end = scenario.end
        self.amplitude = scenario.amplitude
        self.peak = scenario.peak_hour * HOUR
        self.multiplier = multiplier
        self.starts: list[float] = []
        self.stops: list[float] = []
        self.phases = []
        t = self.start
        for i, phase in enumerate(platform.phases):
            if t >= self.end:
                break
            last = i == len(platform.phases) - 1
            stop = self.end if last else min(self.end, t + phase.hours * HOUR)
            self.starts.append(t)
            self.stops.append(stop)
            self.phases.append(phase)
            t = stop
        self.stops[-1] = self.end  # phases shorter than the scenario: the last one goes on
        self._r_from, self._r_to, self._r = math.inf, -math.inf, 0.0

    def index(self, t: float) -> int:
        return max(0, bisect.bisect_right(self.starts, t) - 1)

    def r(self, t: float) -> float:
        # Asked once per event, in time order: remember the phase last asked about.
        if not self._r_from <= t < self._r_to:
            i = self.index(t)
            self._r_from = self.starts[i] if i else -math.inf
            self._r_to = self.stops[i] if i < len(self.stops) - 1 else math.inf
            self._r = self.phases[i].r
        return self._r

    def diurnal(self, t: float) -> float:
        if not self.amplitude:
            return 1.0
        return 1.0 + self.amplitude * math.cos(2 * math.pi * ((t - self.peak) % DAY) / DAY)

    def base_rate(self, t: float) -> float:
        """Seeds per second at ``t`` before the daily cycle."""
        i = self.index(t)
        phase = self.phases[i]
        rate = phase.seeds_per_hour
        if phase.seeds_per_hour_end is not None:
            span = self.stops[i] - self.starts[i]
            ratio = phase.seeds_per_hour_end / phase.seeds_per_hour
            rate *= ratio ** ((t - self.starts[i]) / span)
        return rate / HOUR * self.multiplier

    def seed_rate(self, t: float) -> float:
        return self.base_rate(t) * self.diurnal(t)

    def segments(self) -> Iterator[tuple[float, float, float]]:
        """(from, to, bound of the seed rate) over hour-long pieces inside phases, for
        thinning: the base rate is monotone inside a phase, so its larger end bounds it."""
        for i, (a, b) in enumerate(zip(self.starts, self.stops, strict=True)):
            t = a
            while t < b:
                u = min(b, t + HOUR)
                phase = self.phases[i]
                top = phase.seeds_per_hour
                if phase.seeds_per_hour_end is not None:
                    top = max(top, phase.seeds_per_hour_end)
                yield t, u, top / HOUR * self.multiplier * (1 + self.amplitude)
                t = u


def arrivals(
    rng: random.Random,
    rate: Callable[[float], float],
    segments: Iterator[tuple[float, float, float]],
) -> Iterator[float]:
    """Times of an inhomogeneous Poisson process by thinning, segment by segment
    (Lewis and Shedler): candidates at the segment's bound, kept with probability rate/bound."""
    for a, b, bound in segments:
        if bound <= 0:
            continue
        t = a
        while True:
            t += rng.expovariate(bound)
            if t >= b:
                break  # memoryless: the next segment starts afresh
            if rng.random() * bound < rate(t):
                yield t


def flat_segments(start: float, end: float, per_second: float, amplitude: float):
    """Hour-long segments of a constant rate times the daily cycle (background posts)."""
    t = start
    while t < end:
        u = min(end, t + HOUR)
        yield t, u, per_second * (1 + amplitude)
        t = u

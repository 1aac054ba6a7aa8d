"""The model's random draws and distribution functions, in pure Python.

Everything draws from one :class:`random.Random`, so a seed fixes the output. Pure Python on
purpose: the worker image pins its dependencies, and nothing here needs vectors (the model
draws one event at a time, in time order).
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Sequence
from statistics import NormalDist
from typing import Generic, TypeVar

from pipeline.simulate.scenario import Delay
from pipeline.virality.generation import gamma_p

T = TypeVar("T")
_STD_NORMAL = NormalDist()
# Above this, a dispersion is treated as infinite: the negative binomial is then a Poisson.
POISSON_DISPERSION = 1e6


class Weighted(Generic[T]):
    """Draws items with probability proportional to their weights (zero weights never)."""

    __slots__ = ("_cum", "_items", "_total")

    def __init__(self, items: Sequence[T], weights: Sequence[float]) -> None:
        pairs = [(i, w) for i, w in zip(items, weights, strict=True) if w > 0]
        if not pairs:
            raise ValueError("no item has a weight > 0")
        self._items = [i for i, _ in pairs]
        self._cum: list[float] = []
        total = 0.0
        for _, w in pairs:
            total += w
            self._cum.append(total)
        self._total = total
        # u·total can round up to total itself: the last bound is infinite so that it is in.
        self._cum[-1] = math.inf

    def draw(self, rng: random.Random) -> T:
        return self._items[bisect.bisect_right(self._cum, rng.random() * self._total)]


def zipf_weights(n: int, exponent: float) -> list[float]:
    """Weights of ranks 1..n under Zipf's law: rank i has weight i^-exponent."""
    return [i**-exponent for i in range(1, n + 1)]


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw: multiplication method for small means, PTRS (Hörmann 1993) above."""
    if lam <= 0:
        return 0
    if lam < 30:
        limit = math.exp(-lam)
        k = 0
        p = rng.random()
        while p > limit:
            k += 1
            p *= rng.random()
        return k
    slam = math.sqrt(lam)
    loglam = math.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2)
    while True:
        u = rng.random() - 0.5
        v = rng.random()
        us = 0.5 - abs(u)
        k = math.floor((2 * a / us + b) * u + lam + 0.43)
        if us >= 0.07 and v <= vr:
            return k
        if k < 0 or (us < 0.013 and v > us):
            continue
        if math.log(v) + math.log(inv_alpha) - math.log(a / (us * us) + b) <= (
            -lam + k * loglam - math.lgamma(k + 1)
        ):
            return k


def negative_binomial(rng: random.Random, mean: float, k: float) -> int:
    """Number of children: a Poisson whose mean is Gamma(k, mean/k) distributed, i.e. a
    negative binomial with this mean and variance mean + mean²/k (k is the dispersion)."""
    if mean <= 0:
        return 0
    if k >= POISSON_DISPERSION:
        return poisson(rng, mean)
    return poisson(rng, rng.gammavariate(k, mean / k))


class DelayDist:
    """The generation interval: delay in seconds from an event to each of its children,
    log-normal or gamma with the given mean and coefficient of variation."""

    TABLE_POINTS = 4096

    def __init__(self, delay: Delay) -> None:
        self.dist = delay.dist
        self.mean = delay.mean_minutes * 60.0
        cv = delay.cv
        if self.dist == "lognormal":
            self.sigma = math.sqrt(math.log1p(cv * cv))
            self.mu = math.log(self.mean) - self.sigma**2 / 2
        else:
            self.shape = 1.0 / (cv * cv)
            self.scale = self.mean * cv * cv
        self._table: tuple[list[float], list[float]] | None = None

    def sample(self, rng: random.Random) -> float:
        if self.dist == "lognormal":
            return rng.lognormvariate(self.mu, self.sigma)
        return rng.gammavariate(self.shape, self.scale)

    def cdf(self, x: float) -> float:
        if x <= 0:
            return 0.0
        if self.dist == "lognormal":
            return _STD_NORMAL.cdf((math.log(x) - self.mu) / self.sigma)
        return gamma_p(self.shape, x / self.scale)

    def quantile(self, u: float) -> float:
        """The delay with CDF ``u`` (0 < u < 1): exact for log-normal, interpolated in a
        table of the CDF for gamma (relative error far below a millisecond's worth)."""
        if self.dist == "lognormal":
            return math.exp(self.mu + self.sigma * _STD_NORMAL.inv_cdf(u))
        xs, ps = self._table or self._build_table()
        if u <= ps[0]:  # P(a, x) ~ x^a / Γ(a + 1) near 0
            return self.scale * math.exp((math.log(u) + math.lgamma(self.shape + 1)) / self.shape)
        i = bisect.bisect_left(ps, u)
        if i >= len(ps):
            return xs[-1]
        p0, p1 = ps[i - 1], ps[i]
        w = (u - p0) / (p1 - p0) if p1 > p0 else 0.0
        return math.exp(math.log(xs[i - 1]) * (1 - w) + math.log(xs[i]) * w)

    def _build_table(self) -> tuple[list[float], list[float]]:
        lo, hi = math.log(self.scale * 1e-6), math.log(self.scale * (self.shape + 60))
        n = self.TABLE_POINTS
        xs = [math.exp(lo + (hi - lo) * i / (n - 1)) for i in range(n)]
        ps = [gamma_p(self.shape, x / self.scale) for x in xs]
        self._table = (xs, ps)
        return self._table

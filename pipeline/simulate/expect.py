"""Expected counts of the model, without drawing a single event: what calibration solves with.

For one platform, the expected number of events of generation n in time bin j obeys the
renewal equation (a discretised Hawkes intensity, one generation at a time)::

    λ₀[j]   = μ[j]                                   seeds (per bin, from the timeline)
    λₙ₊₁[j] = Σᵢ λₙ[i] · R[i] · φₙ · g[j - i]         children of generation n

with g the generation interval on the bin grid and φₙ the mean relative fertility of
generation n (``f_post`` for seeds, which are posts; 1 for later generations, whose kinds come
from the mix, since fertilities are rescaled to average 1 over it). Which of those events carry
the movement's tag, and in which region, is a Markov chain over generations that does not
depend on time (a child stays or jumps; a child *post* may adopt a regional variant and drop
the tag), so the expected count in a window and set of regions is
``Σₙ (Σ_{j in window} λₙ[j]) · Σ_{r in regions} wₙ[r]``. Influencers are lineages of their own
whose first generation is their fixed audience. Everything is linear in the seed rates, which
is how a target count is solved for exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.hashtags import distinct
from pipeline.simulate.distributions import DelayDist
from pipeline.simulate.scenario import Influencer, Platform, Scenario
from pipeline.simulate.timeline import HOUR, Timeline

STEP = 600.0  # seconds per bin of the renewal equation (300 moves results by < 1e-4)
SUBSTEPS = 4  # samples per bin when integrating rates and the delay kernel
TAIL = 1e-6  # kernel mass left out; generations stop below this share too
MAX_GENERATIONS = 2000


@dataclass(frozen=True, slots=True)
class Mix:
    """A platform's kind mix and fertilities, normalised."""

    kinds: dict[str, float]  # probability of each kind among children
    fertility: dict[str, float]  # relative mean children, averaging 1 over ``kinds``

    @classmethod
    def of(cls, platform: Platform) -> Mix:
        total = sum(w for _, w in platform.kinds)
        kinds = {k: w / total for k, w in platform.kinds}
        raw = dict(platform.fertility)
        mean = sum(kinds[k] * raw[k] for k in kinds)
        fertility = {k: (raw[k] / mean if mean > 0 else 0.0) for k in kinds}
        return cls(kinds, fertility)


class Chain:
    """Where a lineage's events are and whether they still carry the tag, by generation."""

    def __init__(self, scenario: Scenario) -> None:
        self.codes = [r.code for r in scenario.regions]
        self.jump = scenario.jump
        attract = sum(r.attract for r in scenario.regions)
        self.attract = [r.attract / attract if attract else 0.0 for r in scenario.regions]
        drop = dict.fromkeys(self.codes, 0.0)
        for v in scenario.variants:
            for code in v.regions:
                drop[code] += v.adopt * (1 - v.keep_original)
        self.drop = [drop[c] for c in self.codes]

    def step(
        self, carry: list[float], post: float, post_fert: float, fert: float
    ) -> tuple[list[float], list[float]]:
        """(count weights, fertility weights) of the next generation, given the fertility
        weights ``carry`` of the parents; ``post`` is the share of posts among the children,
        ``post_fert`` their fertility and ``fert`` the children's mean fertility."""
        total = sum(carry)
        pre = [
            (1 - self.jump) * c + self.jump * a * total
            for c, a in zip(carry, self.attract, strict=True)
        ]
        counts = [p * (1 - post * d) for p, d in zip(pre, self.drop, strict=True)]
        if fert <= 0:
            return counts, [0.0] * len(pre)
        fertile = [
            p * (fert - post * post_fert * d) / fert for p, d in zip(pre, self.drop, strict=True)
        ]
        return counts, fertile


class Expectation:
    """Expected events carrying the tag on one platform, from seeds (per unit of seed-rate
    multiplier) and from influencers, by generation."""

    def __init__(self, scenario: Scenario, platform: Platform) -> None:
        self.scenario = scenario
        self.bins = math.ceil(scenario.hours * HOUR / STEP)
        timeline = Timeline(scenario, platform)
        self.r = [timeline.r(scenario.start + (j + 0.5) * STEP) for j in range(self.bins)]
        self.delay = DelayDist(platform.delay)
        self.kernel = self._kernel(None)
        mix = Mix.of(platform)
        chain = Chain(scenario)
        self.codes = chain.codes
        post, f_post = mix.kinds.get("post", 0.0), mix.fertility.get("post", 0.0)
        # Seeds: posts, in regions by seed weight, possibly adopting a variant at once.
        seeds = [self._integral(timeline.seed_rate, j) for j in range(self.bins)]
        weights = sum(r.seeds for r in scenario.regions)
        share = [r.seeds / weights for r in scenario.regions]
        counts = [s * (1 - d) for s, d in zip(share, chain.drop, strict=True)]
        self.seed_part = self._lineage(seeds, counts, counts, f_post, chain, post, f_post)
        self.influencer_part: list[tuple[list[float], list[list[float]]]] = []
        tag = distinct([scenario.tag])[0]
        for inf in scenario.influencers:
            if inf.platform == platform.name:
                carries = tag in distinct(inf.hashtags)
                self.influencer_part.append(
                    self._influencer(inf, carries, chain, mix, post, f_post)
                )

    # -- building ------------------------------------------------------------------------------

    def _integral(self, rate: Callable[[float], float], j: int) -> float:
        t0 = self.scenario.start + j * STEP
        n = SUBSTEPS
        return sum(rate(t0 + (k + 0.5) * STEP / n) for k in range(n)) * STEP / n

    def _kernel(self, at: float | None) -> list[float]:
        """g[k]: probability that a child lands k bins after its parent's bin, for a parent
        uniformly placed in its bin (``at`` None) or at fraction ``at`` of it."""
        cdf = self.delay.cdf
        spots = [at] if at is not None else [(i + 0.5) / SUBSTEPS for i in range(SUBSTEPS)]
        out: list[float] = []
        done = 0.0
        for k in range(self.bins):
            p = sum(cdf((k + 1 - u) * STEP) - cdf(max(0.0, (k - u) * STEP)) for u in spots)
            p /= len(spots)
            out.append(p)
            done += p
            if done > 1 - TAIL:
                break
        return out

    def _convolve(self, cur: list[float], factor: float, kernel: list[float]) -> list[float]:
        out = [0.0] * self.bins
        bins, r = self.bins, self.r
        for i, c in enumerate(cur):
            a = c * r[i] * factor
            if a > 0:
                end = min(bins, i + len(kernel))
                out[i:end] = [x + a * g for x, g in zip(out[i:end], kernel, strict=False)]
        return out

    def _lineage(
        self,
        first: list[float],
        counts: list[float],
        carry: list[float],
        phi: float,
        chain: Chain,
        post: float,
        f_post: float,
    ) -> tuple[list[float], list[list[float]]]:
        """Per generation from ``first``: its expected events per bin, and the share of them
        in each region that carry the tag."""
        gens: list[list[float]] = [first]
        weights: list[list[float]] = [counts]
        total = sum(first)
        cur = first
        for _ in range(MAX_GENERATIONS):
            cur = self._convolve(cur, phi, self.kernel)
            mass = sum(cur)
            if mass <= TAIL * max(total, 1e-300):
                break
            total += mass
            counts, carry = chain.step(carry, post, f_post, 1.0)
            gens.append(cur)
            weights.append(counts)
            phi = 1.0
        return gens, weights

    def _influencer(
        self, inf: Influencer, carries: bool, chain: Chain, mix: Mix, post: float, f_post: float
    ) -> tuple[list[float], list[list[float]]]:
        at = inf.at_hours * HOUR / STEP
        b0 = min(int(at), self.bins - 1)
        root = [0.0] * self.bins
        root[b0] = 1.0
        here = [1.0 if carries and c == inf.region else 0.0 for c in self.codes]
        audience = dict(inf.audience)
        size = sum(audience.values())
        kernel = self._kernel(at - b0)
        first = [0.0] * self.bins
        first[b0 : b0 + len(kernel)] = kernel[: self.bins - b0]
        first = [x * size for x in first]
        a_post = audience.get("post", 0) / size
        a_fert = sum(n * mix.fertility[k] for k, n in audience.items()) / size
        counts, carry = chain.step(here, a_post, f_post, a_fert)
        gens, weights = self._lineage(first, counts, carry, a_fert, chain, post, f_post)
        return [root, *gens], [here, *weights]

    # -- queries -------------------------------------------------------------------------------

    def _window(self, lo_hours: float, hi_hours: float) -> list[tuple[int, float]]:
        """(bin, fraction of it inside) for the window [lo, hi) in hours after the start."""
        lo, hi = lo_hours * HOUR / STEP, hi_hours * HOUR / STEP
        out = []
        for j in range(int(lo), min(self.bins, math.ceil(hi))):
            part = min(hi, j + 1) - max(lo, j)
            if part > 0:
                out.append((j, part))
        return out

    def _by_region(
        self, part: tuple[list[list[float]], list[list[float]]], window: list[tuple[int, float]]
    ) -> list[float]:
        gens, weights = part
        out = [0.0] * len(self.codes)
        for gen, w in zip(gens, weights, strict=True):
            inside = sum(gen[j] * f for j, f in window)
            if inside:
                out = [o + inside * x for o, x in zip(out, w, strict=True)]
        return out

    def by_region(self, lo_hours: float, hi_hours: float, multiplier: float) -> dict[str, float]:
        """Expected events carrying the tag in the window, by region."""
        window = self._window(lo_hours, hi_hours)
        total = [multiplier * x for x in self._by_region(self.seed_part, window)]
        for part in self.influencer_part:
            total = [t + x for t, x in zip(total, self._by_region(part, window), strict=True)]
        return dict(zip(self.codes, total, strict=True))

    def count(
        self,
        lo_hours: float,
        hi_hours: float,
        regions: tuple[str, ...] | None = None,
        multiplier: float = 1.0,
    ) -> float:
        found = self.by_region(lo_hours, hi_hours, multiplier)
        return sum(v for k, v in found.items() if regions is None or k in regions)

    def multiplier_for(
        self, events: float, lo: float, hi: float, regions: tuple[str, ...] | None = None
    ) -> float:
        """The seed-rate multiplier that makes the expected count in the window ``events``."""
        fixed = self.count(lo, hi, regions, multiplier=0.0)
        per_unit = self.count(lo, hi, regions, multiplier=1.0) - fixed
        if per_unit <= 0:
            raise ValueError("seeds give no events in the target window")
        if events <= fixed:
            raise ValueError(
                f"the influencers alone are expected to give {fixed:,.0f} events there; "
                "the target must be larger"
            )
        return (events - fixed) / per_unit


def distinct_fraction(x: float, skew: float) -> float:
    """Expected distinct users ÷ pool size after ``x`` × pool draws, when user rank i (of a
    pool of M) is drawn with probability ∝ i^(1/skew - 1), i.e. index = ⌊M·U^skew⌋:
    ``∫₀¹ 1 - exp(-x·h(y)) dy`` with h(y) = y^(1/skew - 1) / skew, integrated after the
    substitution y = z^skew, which makes the integrand smooth."""
    if skew == 1:
        return -math.expm1(-x)
    n = 2000  # Simpson
    a = skew

    def f(z: float) -> float:
        if z == 0:
            return 0.0
        return -math.expm1(-(x / a) * z ** (1 - a)) * a * z ** (a - 1)

    h = 1.0 / n
    total = f(0) + f(1) + sum((4 if i % 2 else 2) * f(i * h) for i in range(1, n))
    return total * h / 3


def pool_for(events: float, users: float, skew: float) -> float:
    """The pool size M whose expected distinct users among ``events`` draws is ``users``."""
    if users >= events:
        raise ValueError(f"{users:,.0f} distinct users need more than {events:,.0f} events")
    lo, hi = math.log(users), math.log(users) + 30  # M between D and D·e^30
    for _ in range(60):
        mid = (lo + hi) / 2
        m = math.exp(mid)
        if m * distinct_fraction(events / m, skew) < users:
            lo = mid
        else:
            hi = mid
    return math.exp((lo + hi) / 2)

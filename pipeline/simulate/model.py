"""The generative model: a marked Hawkes (branching) process, streamed in time order.

:func:`plan` resolves a scenario at a scale (seed rates solved from targets, user pools,
influencer audiences); :func:`events` draws the events one at a time from a queue of pending
work ordered by event time (:class:`~pipeline.simulate.agenda.Agenda`), so memory holds only
what is pending, never the output:

- a *source* (seed or background Poisson process) is one queue entry, its next arrival;
- when an event is emitted its number of children is drawn (negative binomial with mean
  R(t)·fertility(kind) and dispersion k) and each child's time is its delay after it; a parent
  with few children pushes them, one with many (an influencer's audience, a viral post) pushes
  one *fan-out cursor* that yields its children's times in order (sorted order statistics of the
  delay distribution, drawn one at a time), so a 123,000-child root costs one queue entry;
- children past the scenario's end are never scheduled.

A child is a repost, reply or reaction of its parent (same hashtags, as written) or a post of
its own prompted by it (it writes the movement's tag, or a variant of its region); it stays in
its parent's region or jumps to one drawn by ``attract`` weight. README "Simulator" has the maths.
Same scenario, scale and seed: the same bytes (one ``random.Random``, ties broken by sequence).
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from pipeline.hashtags import distinct
from pipeline.simulate.agenda import Agenda
from pipeline.simulate.distributions import (
    DelayDist,
    Weighted,
    negative_binomial,
    zipf_weights,
)
from pipeline.simulate.expect import Expectation, Mix, pool_for
from pipeline.simulate.scenario import Influencer, Platform, Scenario, ScenarioError
from pipeline.simulate.timeline import HOUR, Timeline, arrivals, flat_segments

PREFIX = {"twitter": "tw-", "facebook": "fb-", "instagram": "ig-"}
# Up to this many children are pushed one by one; more share one fan-out cursor. Pushing is
# cheaper per child, the cursor keeps the queue small when one event has a crowd.
FAN_OUT = 16
SEED, BACKGROUND, CHILD, FAN, ROOT = range(5)
# A parent as its children need it: (id, platform index, region, hashtags, lineage). Only
# strings and numbers, so the garbage collector untracks these tuples, and the queue entries and
# fan-out cursors holding them, at its next pass: a tracked object per pending child made every
# full collection walk hundreds of thousands of them, slowing generation as the scale grew.
Parent = tuple[str, int, str, tuple[str, ...], int]
# Bucket width of the pending-work queue (the output does not depend on it): a minute keeps
# the buckets' lists, which the garbage collector walks, to a few thousand.
AGENDA_SECONDS = 60.0


@dataclass(slots=True)
class PlatformPlan:
    """One platform resolved at a scale."""

    name: str
    index: int  # position in Plan.platforms
    prefix: str
    timeline: Timeline  # seed rate already multiplied by the solved factor and the scale
    mix: Mix
    kinds: Weighted[str]
    delay: DelayDist
    dispersion: float
    skew: float
    pools: dict[str, int]  # users per region
    background_per_second: float
    multiplier: float  # the solved seed-rate factor (1 without a target)
    expected: dict[str, float] = field(default_factory=dict)  # figures for reports


@dataclass(slots=True)
class Plan:
    scenario: Scenario
    scale: float
    platforms: list[PlatformPlan]
    audiences: list[tuple[Influencer, dict[str, int]]]


def plan(scenario: Scenario, scale: float, only: tuple[str, ...] | None = None) -> Plan:
    """Resolve ``scenario`` at ``scale``: every count and rate times ``scale``, not the time.

    ``only`` keeps some platforms: platforms are independent processes in the model, so each
    one's events are distributed exactly as in the full scenario (tests use this to measure a
    small platform at a larger scale cheaply).
    """
    keep = [p for p in scenario.platforms if only is None or p.name in only]
    platforms = [_platform_plan(scenario, p, scale, i) for i, p in enumerate(keep)]
    audiences = [
        (inf, {k: round(n * scale) for k, n in inf.audience})
        for inf in scenario.influencers
        if only is None or inf.platform in only
    ]
    return Plan(scenario, scale, platforms, audiences)


@functools.lru_cache(maxsize=16)
def _expectation(scenario: Scenario, platform: Platform) -> Expectation:
    """Expectations do not depend on the scale: solved once per scenario and platform."""
    return Expectation(scenario, platform)


def _platform_plan(scenario: Scenario, p: Platform, scale: float, index: int) -> PlatformPlan:
    where = f"scenario {scenario.source}: field 'platforms.{p.name}"
    expect = _expectation(scenario, p)
    multiplier = 1.0
    expected: dict[str, float] = {}
    if p.target is not None:
        t = p.target
        try:
            multiplier = expect.multiplier_for(t.events, t.from_hours, t.to_hours, t.regions)
        except ValueError as exc:
            raise ScenarioError(f"{where}.target.events': {exc}") from None
        expected["target"] = t.events
    users = p.users
    lo, hi = users.from_hours, users.to_hours or scenario.hours
    shares = expect.by_region(lo, hi, multiplier)
    tagged = sum(shares.values())
    if users.distinct is not None:
        try:
            pool = pool_for(tagged, users.distinct, users.skew)
        except ValueError as exc:
            raise ScenarioError(f"{where}.users.distinct': {exc}") from None
        expected["users_events"] = tagged
    else:
        pool = float(users.pool or 1)
    pools = {
        code: max(1, round(pool * share / tagged * scale)) if tagged > 0 else max(1, round(pool))
        for code, share in shares.items()
    }
    mix = Mix.of(p)
    return PlatformPlan(
        name=p.name,
        index=index,
        prefix=PREFIX[p.name],
        timeline=Timeline(scenario, p, multiplier * scale),
        mix=mix,
        kinds=Weighted(list(mix.kinds), list(mix.kinds.values())),
        delay=DelayDist(p.delay),
        dispersion=p.dispersion,
        skew=users.skew,
        pools=pools,
        background_per_second=p.background_per_hour / HOUR * scale,
        multiplier=multiplier,
        expected=expected,
    )


def events(resolved: Plan, seed: int = 0) -> Iterator[tuple[float, bytes]]:
    """The scenario's events in time order, as (ts, JSON line without newline)."""
    return Engine(resolved, seed).run()


def _cycled(per_second: float, timeline: Timeline) -> Callable[[float], float]:
    """A constant rate times the daily cycle (background posts)."""
    return lambda t: per_second * timeline.diurnal(t)


def lineage_of(scenario: Scenario, hashtags: tuple[str, ...]) -> int:
    """0 if ``hashtags`` carry the movement's tag, else 1 + the index of the variant they
    carry (scenario checks make sure an influencer carries one of them)."""
    written = distinct(hashtags)
    if distinct([scenario.tag])[0] in written:
        return 0
    for i, v in enumerate(scenario.variants):
        if distinct([v.tag])[0] in written:
            return i + 1
    raise ValueError("hashtags carry neither the movement's tag nor a variant")


class Engine:
    def __init__(self, resolved: Plan, seed: int) -> None:
        sc = resolved.scenario
        self.plan = resolved
        self.platforms = resolved.platforms
        self.rng = random.Random(seed)
        self.end = sc.end
        self.lang = {r.code: r.lang for r in sc.regions}
        self.seed_regions = Weighted([r.code for r in sc.regions], [r.seeds for r in sc.regions])
        self.jump = sc.jump
        self.attract = (
            Weighted([r.code for r in sc.regions], [r.attract for r in sc.regions])
            if sc.jump > 0
            else None
        )
        self.spellings = Weighted([s for s, _ in sc.spellings], [w for _, w in sc.spellings])
        self.co_tags = sc.co_tags
        self.variant_tags = [v.tag for v in sc.variants]
        # region -> [(cumulative adoption probability, variant index, keep_original)]
        self.adoption: dict[str, list[tuple[float, int, float]]] = {}
        for i, v in enumerate(sc.variants):
            for code in v.regions:
                options = self.adoption.setdefault(code, [])
                options.append(((options[-1][0] if options else 0.0) + v.adopt, i, v.keep_original))
        bg = sc.background
        names = list(bg.tags) + [f"topic{i}" for i in range(len(bg.tags) + 1, bg.vocabulary + 1)]
        self.background = Weighted(names, zipf_weights(bg.vocabulary, bg.zipf))
        self.in_posts = bg.in_posts
        self.users = {
            pp.name: {code: (n, f"{pp.prefix}{code.lower()}-") for code, n in pp.pools.items()}
            for pp in resolved.platforms
        }
        self.count = 0
        self.agenda = Agenda(AGENDA_SECONDS)
        self.seq = 0

    def push(self, t: float, op: int, data: object) -> None:
        self.seq += 1
        self.agenda.push((t, self.seq, op, data))

    def run(self) -> Iterator[tuple[float, bytes]]:
        rng = self.rng
        sc = self.plan.scenario
        by_name = {pp.name: pp for pp in self.plan.platforms}
        for pp in self.plan.platforms:
            tl = pp.timeline
            source = arrivals(rng, tl.seed_rate, tl.segments())
            self._next(source, SEED, pp)
            if pp.background_per_second > 0:
                segments = flat_segments(sc.start, sc.end, pp.background_per_second, sc.amplitude)
                noise = arrivals(rng, _cycled(pp.background_per_second, tl), segments)
                self._next(noise, BACKGROUND, pp)
        for inf, audience in self.plan.audiences:
            self.push(sc.start + inf.at_hours * HOUR, ROOT, (by_name[inf.platform], inf, audience))
        pop = self.agenda.pop
        while True:
            try:
                t, _, op, data = pop()
            except IndexError:
                return
            if op == CHILD:
                yield self._child(t, data, None)  # type: ignore[arg-type]
            elif op == FAN:
                yield self._fan(t, data)  # type: ignore[arg-type]
            elif op == SEED:
                pp, source = data  # type: ignore[misc]
                self._next(source, SEED, pp)
                region = self.seed_regions.draw(rng)
                tags, lineage = self._post_tags(region, 0)
                yield self._emit(t, pp, "post", region, tags, lineage, None)
            elif op == BACKGROUND:
                pp, source = data  # type: ignore[misc]
                self._next(source, BACKGROUND, pp)
                region = self.seed_regions.draw(rng)
                tags = (self.background.draw(rng),)
                yield self._emit(t, pp, "post", region, tags, 0, None, fertile=False)
            else:
                yield self._root(t, *data)  # type: ignore[misc]

    def _next(self, source: Iterator[float], op: int, pp: PlatformPlan) -> None:
        t = next(source, None)
        if t is not None:
            self.push(t, op, (pp, source))

    def _post_tags(self, region: str, lineage: int) -> tuple[tuple[str, ...], int]:
        """Hashtags of a new post in ``region`` and its lineage: 0 while it carries the
        movement's tag, else 1 + the index of the variant that replaced it."""
        rng = self.rng
        if lineage:
            tags = [self.variant_tags[lineage - 1]]
        else:
            tags = []
            options = self.adoption.get(region)
            if options:
                u = rng.random()
                for cum, index, keep in options:
                    if u < cum:
                        tags.append(self.variant_tags[index])
                        if rng.random() < keep:
                            tags.append(self.spellings.draw(rng))
                        else:
                            lineage = index + 1
                        break
            if not tags:
                tags.append(self.spellings.draw(rng))
        for tag, p in self.co_tags:
            if rng.random() < p:
                tags.append(tag)
        if self.in_posts and rng.random() < self.in_posts:
            tags.append(self.background.draw(rng))
        return tuple(tags), lineage

    def _emit(
        self,
        t: float,
        pp: PlatformPlan,
        kind: str,
        region: str,
        tags: tuple[str, ...],
        lineage: int,
        parent: str | None,
        user: str | None = None,
        fertile: bool = True,
    ) -> tuple[float, bytes]:
        """Write one event and schedule its children."""
        rng = self.rng
        self.count += 1
        ident = f"{pp.prefix}{self.count}"
        if user is None:
            size, prefix = self.users[pp.name][region]
            user = f"{prefix}{int(size * rng.random() ** pp.skew)}"
        ts = round(t, 3)
        line = orjson.dumps(
            {
                "id": ident,
                "ts": ts,
                "platform": pp.name,
                "kind": kind,
                "user": user,
                "region": region,
                "hashtags": tags,
                "parent": parent,
                "lang": self.lang[region],
            }
        )
        if fertile:
            mean = pp.timeline.r(t) * pp.mix.fertility[kind]
            n = negative_binomial(rng, mean, pp.dispersion) if mean > 0 else 0
            if n:
                self._schedule(t, n, (ident, pp.index, region, tags, lineage), None)
        return ts, line

    def _schedule(
        self,
        t: float,
        n: int,
        parent: Parent,
        kinds: dict[str, int] | None,
    ) -> None:
        """Children of an event emitted at ``t``: ``n`` of them, kinds from the platform's
        mix or exactly ``kinds`` (an influencer's audience)."""
        rng = self.rng
        pp = self.platforms[parent[1]]
        if n <= FAN_OUT and kinds is None:
            delay = pp.delay.sample
            for _ in range(n):
                when = t + delay(rng)
                if when < self.end:
                    self.push(when, CHILD, parent)
            return
        # Sorted order statistics of n draws: the smallest of n uniforms is 1 - V^(1/n); given
        # the previous one u, the next is 1 - (1 - u)·V^(1/remaining).
        u = 1.0 - rng.random() ** (1.0 / n)
        when = t + pp.delay.quantile(u)
        if when < self.end:
            self.push(when, FAN, (t, n, u, parent, kinds))

    def _child(
        self,
        t: float,
        parent: Parent,
        kind: str | None,
    ) -> tuple[float, bytes]:
        rng = self.rng
        ident, index, region, tags, lineage = parent
        pp = self.platforms[index]
        if self.attract is not None and rng.random() < self.jump:
            region = self.attract.draw(rng)
        if kind is None:
            kind = pp.kinds.draw(rng)
        if kind == "post":
            tags, lineage = self._post_tags(region, lineage)
        return self._emit(t, pp, kind, region, tags, lineage, ident)

    def _fan(self, t: float, cursor: tuple[Any, ...]) -> tuple[float, bytes]:
        """The next child of a fan-out cursor (start, remaining, u, parent, kinds)."""
        rng = self.rng
        start, remaining, u, parent, kinds = cursor
        kind = None
        if kinds is not None:  # exact counts: draw without replacement
            pick = rng.random() * remaining
            for name, left in kinds.items():
                if pick < left:
                    kind = name
                    kinds[name] = left - 1
                    break
                pick -= left
            else:  # rounding at the very end of the loop
                kind = next(k for k, left in kinds.items() if left)
                kinds[kind] -= 1
        line = self._child(t, parent, kind)
        remaining -= 1
        if remaining:
            u = 1.0 - (1.0 - u) * rng.random() ** (1.0 / remaining)
            if u < 1.0:
                when = start + self.platforms[parent[1]].delay.quantile(u)
                if when < self.end:
                    self.push(when, FAN, (start, remaining, u, parent, kinds))
        return line

    def _root(
        self, t: float, pp: PlatformPlan, inf: Influencer, audience: dict[str, int]
    ) -> tuple[float, bytes]:
        """An influencer's post: exactly its audience as direct children."""
        lineage = lineage_of(self.plan.scenario, inf.hashtags)
        ts = round(t, 3)
        line = orjson.dumps(
            {
                "id": inf.id,
                "ts": ts,
                "platform": pp.name,
                "kind": "post",
                "user": inf.user,
                "region": inf.region,
                "hashtags": inf.hashtags,
                "parent": None,
                "lang": self.lang[inf.region],
            }
        )
        self.count += 1
        n = sum(audience.values())
        if n:
            parent = (inf.id, pp.index, inf.region, inf.hashtags, lineage)
            self._schedule(t, n, parent, dict(audience))
        return ts, line

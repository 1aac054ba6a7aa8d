"""``spread backfill``: a file's history as Prometheus series at their true dates.

The metric contract's series are computed over the file's whole event-time span, one sample
per ``step`` seconds (aligned to the epoch), with the same judgement (:func:`summarise`), the
same minute buckets and window rates, and the same series cap as a worker, then written as
OpenMetrics text for ``promtool tsdb create-blocks-from openmetrics``. Dropped into
Prometheus' data directory (with a retention that reaches back that far), the blocks show
October 2017 in Grafana on October 2017.

At each step ``t`` (the watermark's step, as the file is read in replay order) totals count
the events read up to then, as a worker would have shown them. Rates at ``t`` use the minute
buckets ending with ``t``'s minute, and first-seen times the earliest event of the whole
file: a late event shows in those from the start, where a live worker would have added it
when it arrived.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field

from pipeline import aggregate
from pipeline.aggregate import summarise
from pipeline.virality import topk
from pipeline.virality.rates import WINDOWS

MINUTE = 60


@dataclass
class History:
    """Per-step deltas of everything the series need, from one pass over the events."""

    step: int
    accepted: Counter = field(default_factory=Counter)  # step -> events
    rejected: Counter = field(default_factory=Counter)  # step -> events
    posts: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))  # tag -> step
    regions: dict[tuple[str, str], Counter] = field(default_factory=lambda: defaultdict(Counter))
    minutes: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))  # tag->min
    first_seen: dict[tuple[str, str], float] = field(default_factory=dict)
    first_step: int | None = None
    last_step: int | None = None


def collect(items: Iterable[tuple[float | None, bytes]], step: int) -> History:
    """One pass over ``(ts, line)`` in replay order."""
    h = History(step)
    watermark: float | None = None
    early_rejects = 0
    for _ts, line in items:
        s = summarise(line, envelope=True)
        if s.max_ts is not None:
            watermark = s.max_ts if watermark is None else max(watermark, s.max_ts)
        if watermark is None:
            early_rejects += len(s.rejected)  # no step yet: they join the first one
            continue
        at = int(watermark // step) * step
        if h.first_step is None:
            h.first_step = at
            h.rejected[at] += early_rejects
        h.last_step = at
        h.accepted[at] += s.accepted
        h.rejected[at] += len(s.rejected)
        for tag, (n, by_region, hours, first, *_) in s.tags.items():
            h.posts[tag][at] += n
            for region, count in by_region.items():
                h.regions[(tag, region)][at] += count
            for minute, bucket in aggregate.minutes(hours):
                h.minutes[tag][minute] += bucket[0]
            for region, seen in first.items():
                key = (tag, region)
                if key not in h.first_seen or seen < h.first_seen[key]:
                    h.first_seen[key] = seen
    return h


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def openmetrics(h: History, k: int, always: Collection[str] = ()) -> Iterator[str]:
    """The series as OpenMetrics text lines (timestamps in seconds), ending with ``# EOF``."""
    if h.first_step is None:
        yield "# EOF"
        return
    steps = range(h.first_step, h.last_step + h.step, h.step)
    totals = {tag: sum(c.values()) for tag, c in h.posts.items()}
    exported = sorted(topk.select(((t, 0.0, n) for t, n in totals.items()), k, always))
    yield "# TYPE spread_events counter"
    for outcome, deltas in (("accepted", h.accepted), ("rejected", h.rejected)):
        running = 0
        for t in steps:
            running += deltas.get(t, 0)
            yield f'spread_events_total{{outcome="{outcome}"}} {running} {t}'
    yield "# TYPE hashtag_posts counter"
    for tag in exported:
        running = 0
        for t in steps:
            running += h.posts[tag].get(t, 0)
            if running:
                yield f'hashtag_posts_total{{hashtag="{_label(tag)}"}} {running} {t}'
    yield "# TYPE hashtag_region_posts counter"
    for (tag, region), deltas in sorted(h.regions.items()):
        if tag not in exported:
            continue
        running = 0
        for t in steps:
            running += deltas.get(t, 0)
            if running:
                yield (
                    f'hashtag_region_posts_total{{hashtag="{_label(tag)}",region="{region}"}} '
                    f"{running} {t}"
                )
    yield "# TYPE hashtag_posts_per_minute gauge"
    for tag in exported:
        minutes = h.minutes[tag]
        for label, w in WINDOWS.items():
            for t in steps:
                last = (t // MINUTE) * MINUTE
                n = sum(minutes.get(last - i * MINUTE, 0) for i in range(w))
                yield (
                    f'hashtag_posts_per_minute{{hashtag="{_label(tag)}",window="{label}"}} '
                    f"{n / w} {t}"
                )
    yield "# TYPE hashtag_region_first_seen_timestamp_seconds gauge"
    for (tag, region), seen in sorted(h.first_seen.items()):
        if tag not in exported:
            continue
        series = (
            f'hashtag_region_first_seen_timestamp_seconds{{hashtag="{_label(tag)}",'
            f'region="{region}"}}'
        )
        for t in steps:
            if t >= (seen // h.step) * h.step:
                yield f"{series} {seen} {t}"
    yield "# EOF"

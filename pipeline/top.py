"""``spread top``: the trending hashtags across every worker, from their ``/metrics``.

Each worker exports the hashtags of its own partitions, so the merge is a union: a hashtag's
series come from exactly one worker (after a rebalance, possibly two for a moment; the larger
total wins). Rates are event-time posts per minute (DESIGN "Metric contract").
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from pipeline.settings import SettingsError


@dataclass
class Trend:
    hashtag: str
    posts: float = 0.0
    rates: dict[str, float] = field(default_factory=dict)
    regions: float = 0.0
    growth: float | None = None


def scrape(url: str, timeout: float = 10) -> str:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read().decode()
    except OSError as exc:
        raise SettingsError(f"cannot scrape {url}: {getattr(exc, 'reason', exc)}") from None


def merge(texts: Iterable[str]) -> dict[str, Trend]:
    trends: dict[str, Trend] = {}
    for text in texts:
        seen: dict[str, Trend] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                tag = s.labels.get("hashtag")
                if tag is None:
                    continue
                t = seen.setdefault(tag, Trend(tag))
                if s.name == "hashtag_posts_total":
                    t.posts = s.value
                elif s.name == "hashtag_posts_per_minute":
                    t.rates[s.labels["window"]] = s.value
                elif s.name == "hashtag_regions_reached":
                    t.regions = s.value
                elif s.name == "hashtag_growth_ratio":
                    t.growth = s.value
        for tag, t in seen.items():
            if tag not in trends or t.posts > trends[tag].posts:
                trends[tag] = t
    return trends


def ranked(trends: dict[str, Trend], window: str, limit: int) -> list[Trend]:
    return sorted(trends.values(), key=lambda t: (-t.rates.get(window, 0.0), -t.posts, t.hashtag))[
        :limit
    ]


def lines(rows: list[Trend], window: str) -> list[str]:
    out = [f"{'hashtag':<28} {'/min ' + window:>10} {'posts':>10} {'regions':>8} {'growth':>8}"]
    for t in rows:
        growth = "-" if t.growth is None else f"{t.growth:.2f}"
        out.append(
            f"{t.hashtag:<28} {t.rates.get(window, 0.0):>10.2f} {t.posts:>10,.0f} "
            f"{t.regions:>8.0f} {growth:>8}"
        )
    return out

"""``spread top``: the trending hashtags across every worker, from their ``/metrics``.

Each worker exports the hashtags of its own partitions, so the merge is a union: a hashtag's
series come from exactly one worker (after a rebalance, possibly two for a moment; the larger
total wins). Rates are event-time posts per minute (DESIGN "Metric contract"); the default
ranking is the trend score, as the exporter's series cap.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from pipeline.settings import SettingsError


@dataclass
class Trend:
    hashtag: str
    posts: float = 0.0
    rates: dict[str, float] = field(default_factory=dict)
    regions: float = 0.0
    growth: float | None = None
    trend: float | None = None
    rt: float | None = None
    users: float | None = None
    by_region: dict[str, float] = field(default_factory=dict)


def scrape(url: str, timeout: float = 10) -> str:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read().decode()
    except OSError as exc:
        raise SettingsError(f"cannot scrape {url}: {getattr(exc, 'reason', exc)}") from None


_SCALARS = {
    "hashtag_regions_reached": "regions",
    "hashtag_growth_ratio": "growth",
    "hashtag_trend_score": "trend",
    "hashtag_reproduction_number": "rt",
    "hashtag_unique_users": "users",
}


def merge(texts: Iterable[str]) -> dict[str, Trend]:
    trends: dict[str, Trend] = {}
    for text in texts:
        seen: dict[str, Trend] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                tag = s.labels.get("hashtag")
                if tag is None or not s.name.startswith("hashtag_"):
                    continue  # movement_hashtag_info names hashtags too: not a row
                t = seen.setdefault(tag, Trend(tag))
                if s.name == "hashtag_posts_total":
                    t.posts = s.value
                elif s.name == "hashtag_posts_per_minute":
                    t.rates[s.labels["window"]] = s.value
                elif s.name == "hashtag_region_posts_total":
                    t.by_region[s.labels["region"]] = s.value
                elif s.name in _SCALARS:
                    setattr(t, _SCALARS[s.name], s.value)
        for tag, t in seen.items():
            if tag not in trends or t.posts > trends[tag].posts:
                trends[tag] = t
    return trends


RANKINGS = ("trend", "rate", "posts")


def ranked(
    trends: dict[str, Trend],
    window: str,
    limit: int,
    by: str = "trend",
    region: str | None = None,
) -> list[Trend]:
    """The ``limit`` first by trend score, by rate in ``window`` or by posts; ties by posts
    then name. With ``region``, only hashtags posted there, ranked by their posts there."""
    rows = list(trends.values())
    if region is not None:
        rows = [t for t in rows if t.by_region.get(region)]
        key = lambda t: (-t.by_region[region], -t.posts, t.hashtag)  # noqa: E731
    elif by == "rate":
        key = lambda t: (-t.rates.get(window, 0.0), -t.posts, t.hashtag)  # noqa: E731
    elif by == "posts":
        key = lambda t: (-t.posts, t.hashtag)  # noqa: E731
    else:
        key = lambda t: (-(t.trend or 0.0), -t.posts, t.hashtag)  # noqa: E731
    return sorted(rows, key=key)[:limit]


def columns(window: str, region: str | None) -> list[str]:
    first = [f"posts in {region}"] if region else []
    return [
        "hashtag",
        *first,
        f"/min {window}",
        "posts",
        "growth",
        "R_t",
        "trend",
        "regions",
        "users",
    ]


def cells(t: Trend, window: str, region: str | None) -> list[str]:
    def opt(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    first = [f"{t.by_region.get(region, 0):,.0f}"] if region else []
    return [
        t.hashtag,
        *first,
        f"{t.rates.get(window, 0.0):.2f}",
        f"{t.posts:,.0f}",
        opt(t.growth, ".2f"),
        opt(t.rt, ".2f"),
        opt(t.trend, ".1f"),
        f"{t.regions:.0f}",
        opt(t.users, ",.0f"),
    ]


def lines(rows: list[Trend], window: str, region: str | None = None) -> list[str]:
    """Plain text: one header line, one line per hashtag, columns separated by spaces."""
    header = columns(window, region)
    body = [cells(t, window, region) for t in rows]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    out = []
    for row in [header, *body]:
        first, *rest = row
        out.append(
            f"{first:<{widths[0]}}  "
            + "  ".join(c.rjust(w) for c, w in zip(rest, widths[1:], strict=True))
        )
    return out


def table(rows: list[Trend], window: str, region: str | None, title: str) -> Any:
    """A rich table of the same rows, for the live view on a terminal."""
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for i, name in enumerate(columns(window, region)):
        t.add_column(name, justify="left" if i == 0 else "right", no_wrap=True)
    for row in rows:
        t.add_row(*cells(row, window, region))
    return t

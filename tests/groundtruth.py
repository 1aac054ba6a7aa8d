"""Ground truth computed independently of the pipeline's code, from the same input file.

Deliberately written without importing ``pipeline``: stdlib ``json`` instead of orjson, its own
reading of the rules in the README ("Semantics"). Integration tests compare the worker's
``/metrics`` with what this computes.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pycountry

COUNTRIES = {c.alpha_2 for c in pycountry.countries}


def _no_constants(name: str) -> float:
    raise ValueError(f"JSON does not allow {name}")


def norm_tag(tag: str) -> str:
    return unicodedata.normalize("NFKC", tag).casefold().lstrip("#＃")


def norm_region(region: object) -> str:
    if isinstance(region, str) and region.strip().upper() in COUNTRIES:
        return region.strip().upper()
    return "ZZ"


def judge(line: bytes) -> tuple[str | None, dict | None]:
    """(reason or None, event) for one line."""
    try:
        event = json.loads(line.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError):
        return "invalid_json", None
    if not isinstance(event, dict):
        return "not_object", None
    if not isinstance(event.get("id"), str):
        return "bad_id", None
    ts = event.get("ts")
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
        return "bad_ts", None
    tags = event.get("hashtags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        return "bad_hashtags", None
    return None, event


@dataclass
class Truth:
    accepted: int = 0
    rejected: Counter = field(default_factory=Counter)
    watermark: float | None = None
    posts: Counter = field(default_factory=Counter)
    region_posts: Counter = field(default_factory=Counter)  # (tag, region)
    first_seen: dict = field(default_factory=dict)  # (tag, region) -> ts
    minutes: dict = field(default_factory=lambda: defaultdict(Counter))  # tag -> minute -> n
    bad_lines: list = field(default_factory=list)  # (reason, raw bytes)

    def per_minute(self, tag: str, window_minutes: int) -> float:
        last = math.floor(self.watermark / 60) * 60
        first = last - (window_minutes - 1) * 60
        counts = self.minutes[tag]
        return sum(n for m, n in counts.items() if first <= m <= last) / window_minutes


def lines_of(paths: list[Path]) -> list[bytes]:
    out = []
    for path in paths:
        for line in Path(path).read_bytes().split(b"\n"):
            line = line.rstrip(b"\r")
            if line.strip():
                out.append(line)
    return out


def compute(paths: list[Path]) -> Truth:
    truth = Truth()
    for line in lines_of(paths):
        reason, event = judge(line)
        if reason:
            truth.rejected[reason] += 1
            truth.bad_lines.append((reason, line))
            continue
        truth.accepted += 1
        ts = event["ts"]
        truth.watermark = ts if truth.watermark is None else max(truth.watermark, ts)
        region = norm_region(event.get("region"))
        tags = {norm_tag(t) for t in event.get("hashtags") or []} - {""}
        for tag in tags:
            truth.posts[tag] += 1
            truth.region_posts[(tag, region)] += 1
            key = (tag, region)
            truth.first_seen[key] = min(truth.first_seen.get(key, ts), ts)
            truth.minutes[tag][math.floor(ts / 60) * 60] += 1
    return truth

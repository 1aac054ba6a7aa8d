"""Ground truth computed independently of the pipeline's code, from the same input file.

Deliberately written without importing ``pipeline``: stdlib ``json`` instead of orjson, its own
reading of the rules in the README ("Semantics"). Integration tests compare the worker's
``/metrics`` with what this computes.
"""

from __future__ import annotations

import json
import math
import time
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pycountry

COUNTRIES = {c.alpha_2 for c in pycountry.countries}


def _no_constants(name: str) -> float:
    raise ValueError(f"JSON does not allow {name}")


# The README's limits, at their defaults.
MAX_EVENT_BYTES = 65_536
MAX_HASHTAGS = 100
MAX_HASHTAG_CHARS = 140
MAX_FUTURE_SECONDS = 86_400
# Invisible characters the README says are removed from hashtags (besides category Cc).
INVISIBLE = set("\u00ad\u061c\u200b\u200e\u200f\u2060\ufeff") | {
    chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]
}


def norm_tag(tag: str) -> str:
    tag = unicodedata.normalize("NFKC", tag).casefold()
    tag = "".join(c for c in tag if unicodedata.category(c) != "Cc" and c not in INVISIBLE)
    return tag.strip().lstrip("#＃").strip()


def norm_region(region: object) -> str:
    if isinstance(region, str) and region.strip().upper() in COUNTRIES:
        return region.strip().upper()
    return "ZZ"


def judge(line: bytes, now: float | None = None) -> tuple[str | None, dict | None]:
    """(reason or None, event) for one line, the checks in the README's order."""
    if len(line) > MAX_EVENT_BYTES:
        return "too_large", None
    try:
        event = json.loads(line.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError):
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
    if ts < 0 or ts > (time.time() if now is None else now) + MAX_FUTURE_SECONDS:
        return "ts_out_of_range", None
    if tags and len(tags) > MAX_HASHTAGS:
        return "too_many_hashtags", None
    if any(len(norm_tag(t)) > MAX_HASHTAG_CHARS for t in tags or ()):
        return "hashtag_too_long", None
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
    users: dict = field(default_factory=lambda: defaultdict(set))  # tag -> distinct users
    # (tag, region) -> minute -> n
    region_minutes: dict = field(default_factory=lambda: defaultdict(Counter))
    bad_lines: list = field(default_factory=list)  # (reason, raw bytes)

    def growth(self, tag: str) -> float | None:
        """Posts in the 60 buckets ending at the watermark's ÷ the 60 before (README)."""
        last = math.floor(self.watermark / 60) * 60
        counts = self.minutes[tag]
        recent = sum(n for m, n in counts.items() if last - 59 * 60 <= m <= last)
        before = sum(n for m, n in counts.items() if last - 119 * 60 <= m < last - 59 * 60)
        return recent / before if before else None

    def trend(self, tag: str) -> float:
        """README "Trend score": the 15 newest minute buckets' mean against an exponentially
        weighted (half-life 30 min) mean and variance of the 105 before, z = (x − μ) /
        sqrt((σ² + μ + 1) / 15)."""
        last = math.floor(self.watermark / 60) * 60
        counts = self.minutes[tag]
        current = sum(counts.get(last - 60 * i, 0) for i in range(15)) / 15
        older = [counts.get(last - 60 * i, 0) for i in range(15, 120)]
        weights = [0.5 ** (j / 30) for j in range(len(older))]
        mean = sum(w * n for w, n in zip(weights, older, strict=True)) / sum(weights)
        var = sum(w * (n - mean) ** 2 for w, n in zip(weights, older, strict=True)) / sum(weights)
        return (current - mean) / math.sqrt((var + mean + 1) / 15)

    def region_per_minute(self, tag: str, region: str, window_minutes: int) -> float:
        """The region's posts in the w buckets ending at the watermark's, ÷ w."""
        last = math.floor(self.watermark / 60) * 60
        first = last - (window_minutes - 1) * 60
        counts = self.region_minutes[(tag, region)]
        return sum(n for m, n in counts.items() if first <= m <= last) / window_minutes

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
            # A too_large line is dead-lettered truncated (README "Limits").
            kept = line[:MAX_EVENT_BYTES] if reason == "too_large" else line
            truth.bad_lines.append((reason, kept))
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
            truth.region_minutes[(tag, region)][math.floor(ts / 60) * 60] += 1
            user = event.get("user")
            if isinstance(user, str) and user:
                truth.users[tag].add(user)
    return truth

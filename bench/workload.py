"""Deterministic benchmark workload: events with a Zipf-like hashtag distribution."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator

import orjson

REGIONS = ["US", "GB", "FR", "ES", "MX", "EG", "SA", "IN", "BR", "DE", "ZZ"]


START = 1508097600.0


def events(
    n: int,
    distinct_tags: int = 5000,
    seed: int = 8,
    start: float = START,
    step: float = 0.05,
    prefix: str = "b",
) -> Iterator[bytes]:
    """``n`` events ``step`` seconds apart from ``start``, ids ``{prefix}-{i}``."""
    rng = random.Random(seed)
    tags = ["MeToo"] + [f"tag{i}" for i in range(1, distinct_tags)]
    # Cumulative once: choices() with plain weights accumulates all of them on every call.
    cum = list(itertools.accumulate(1 / (i + 1) for i in range(distinct_tags)))
    for i in range(n):
        k = 1 + (rng.random() < 0.3) + (rng.random() < 0.1)
        yield orjson.dumps(
            {
                "id": f"{prefix}-{i}",
                "ts": start + i * step,
                "platform": "twitter",
                "kind": "post",
                "user": f"u-{rng.randrange(100_000)}",
                "region": rng.choice(REGIONS),
                "hashtags": rng.choices(tags, cum_weights=cum, k=k),
                "parent": None,
                "lang": "en",
            }
        )

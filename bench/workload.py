"""Deterministic benchmark workload: events with a Zipf-like hashtag distribution."""

from __future__ import annotations

import random
from collections.abc import Iterator

import orjson

REGIONS = ["US", "GB", "FR", "ES", "MX", "EG", "SA", "IN", "BR", "DE", "ZZ"]


def events(n: int, distinct_tags: int = 5000, seed: int = 8) -> Iterator[bytes]:
    rng = random.Random(seed)
    tags = ["MeToo"] + [f"tag{i}" for i in range(1, distinct_tags)]
    weights = [1 / (i + 1) for i in range(distinct_tags)]
    start = 1508097600.0
    for i in range(n):
        k = 1 + (rng.random() < 0.3) + (rng.random() < 0.1)
        yield orjson.dumps(
            {
                "id": f"b-{i}",
                "ts": start + i * 0.05,
                "platform": "twitter",
                "kind": "post",
                "user": f"u-{rng.randrange(100_000)}",
                "region": rng.choice(REGIONS),
                "hashtags": rng.choices(tags, weights, k=k),
                "parent": None,
                "lang": "en",
            }
        )

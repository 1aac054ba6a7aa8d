"""Write ``data/sample-metoo-2017.jsonl``: a small, hand-shaped sample of October 2017.

A few thousand posts between Sunday 15 Oct 2017 20:00 UTC and the next morning: #MeToo growing
from one root post in the US, written in several ways (``#MeToo``, ``METOO``, ``ＭｅＴｏｏ``),
variants appearing in France, Spain and Latin America and the Arab world hours later, a
background of ordinary hashtags, and a few malformed lines that the worker must dead-letter.
It is illustrative, not calibrated: the simulator (``spread simulate``) is the calibrated model.
Deterministic: the same script writes the same bytes.

    python data/make_sample.py > data/sample-metoo-2017.jsonl
"""

from __future__ import annotations

import json
import math
import random
import sys

START = 1508097600.0  # 2017-10-15T20:00:00Z, a little after the root post
HOURS = 14
rng = random.Random(2017)

SPELLINGS = ["#MeToo", "MeToo", "metoo", "#METOO", "ＭｅＴｏｏ", "＃MeToo", "#Metoo"]
VARIANTS = {  # tag, regions, hours after START when it appears
    "balancetonporc": (["FR", "BE", "CH"], 2.0),
    "YoTambien": (["ES", "MX", "AR", "CO"], 3.5),
    "وأنا_كمان": (["EG", "SA", "LB", "JO"], 5.0),
    "quellavoltache": (["IT"], 6.0),
}
BACKGROUND = [
    "MondayMotivation",
    "NFL",
    "Weinstein",
    "news",
    "GoT",
    "WorldSeries",
    "Brexit",
    "kpop",
    "travel",
    "food",
]
REGIONS = ["US", "US", "US", "GB", "CA", "AU", "IN", "IE", "NZ", "ZA", "us", "", None, "XX"]
PLATFORMS = ["twitter", "twitter", "facebook", "instagram"]
KINDS = ["post", "repost", "repost", "reply", "reaction"]


def events() -> list[dict]:
    out: list[dict] = []
    n = 0
    for minute in range(HOURS * 60):
        hours = minute / 60
        growth = 1 + 8 / (1 + math.exp(-(hours - 4)))  # logistic rise of #MeToo
        for _ in range(rng.randint(int(growth * 0.6), int(growth * 1.2))):
            n += 1
            ts = START + minute * 60 + rng.random() * 60
            tags = [rng.choice(SPELLINGS)]
            region = rng.choice(REGIONS)
            for tag, (regions, after) in VARIANTS.items():
                if hours > after and rng.random() < min(0.2, (hours - after) / 20):
                    tags = [tag] + (["MeToo"] if rng.random() < 0.4 else [])
                    region = rng.choice(regions)
                    break
            if rng.random() < 0.15:
                tags.append(rng.choice(SPELLINGS))  # same tag twice in one post counts once
            if rng.random() < 0.2:
                tags.append(rng.choice(BACKGROUND))
            out.append(_event(n, ts, region, tags))
        for _ in range(rng.randint(0, 2)):  # background noise
            n += 1
            ts = START + minute * 60 + rng.random() * 60
            out.append(_event(n, ts, rng.choice(REGIONS), [rng.choice(BACKGROUND)]))
    out.sort(key=lambda e: e["ts"])
    # A few posts arrive out of order, as real exports do.
    for i in range(0, len(out) - 5, 997):
        out[i], out[i + 3] = out[i + 3], out[i]
    return out


def _event(n: int, ts: float, region: str | None, tags: list[str]) -> dict:
    kind = rng.choice(KINDS)
    return {
        "id": f"s-{n}",
        "ts": round(ts, 3),
        "platform": rng.choice(PLATFORMS),
        "kind": kind,
        "user": f"u-{int(rng.paretovariate(1.2) * 100)}",
        "region": region,
        "hashtags": tags,
        "parent": None if kind == "post" else f"s-{rng.randint(1, max(1, n - 1))}",
        "lang": "en",
    }


MALFORMED = [
    '{"id": "bad-1", "ts": "yesterday", "hashtags": ["MeToo"]}',
    '{"id": 42, "ts": 1508100000, "hashtags": ["MeToo"]}',
    '{"id": "bad-3", "ts": 1508100000, "hashtags": "MeToo"}',
    '["not", "an", "object"]',
    '{"id": "bad-5", "ts": 1508100000, "hashtags": ["MeToo"',
]


def main() -> None:
    lines = [json.dumps(e, ensure_ascii=False) for e in events()]
    for i, bad in enumerate(MALFORMED):
        lines.insert((i + 1) * len(lines) // (len(MALFORMED) + 1), bad)
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

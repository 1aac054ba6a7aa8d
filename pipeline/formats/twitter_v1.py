"""Twitter API v1.1 tweet JSON, one tweet per line (the classic streaming and search format).

``id_str``, ``created_at`` (``Wed Oct 15 20:21:00 +0000 2017``), hashtags from
``extended_tweet.entities`` when the tweet is long, else ``entities``; ``retweeted_status``
→ ``repost`` (parent = its id; its full hashtags, since a retweet's own text is truncated),
``quoted_status_id_str`` → ``repost``, ``in_reply_to_status_id_str`` → ``reply``. Region from
``place.country_code``, else ``user.location`` (:mod:`pipeline.geocode`), else ``ZZ``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from pipeline.formats.convert import ConvertError, load_object
from pipeline.geocode import country_of

CREATED_AT = "%a %b %d %H:%M:%S %z %Y"


def looks_like(obj: Any) -> bool:
    return isinstance(obj, dict) and "id_str" in obj and "created_at" in obj and "user" in obj


def _hashtags(tweet: dict) -> list[str]:
    entities = (tweet.get("extended_tweet") or {}).get("entities") or tweet.get("entities") or {}
    return [h["text"] for h in entities.get("hashtags") or ()]


def convert(line: bytes) -> list[bytes]:
    tweet = load_object(line)
    if not looks_like(tweet):
        raise ConvertError("not a v1.1 tweet (no id_str, created_at or user)")
    try:
        ts = datetime.strptime(tweet["created_at"], CREATED_AT).timestamp()
    except (TypeError, ValueError):
        raise ConvertError(f"created_at {tweet['created_at']!r} is not Twitter's format") from None
    kind, parent, tags = "post", None, _hashtags(tweet)
    retweeted = tweet.get("retweeted_status")
    if isinstance(retweeted, dict):
        kind, parent, tags = "repost", retweeted.get("id_str"), _hashtags(retweeted)
    elif tweet.get("quoted_status_id_str"):
        kind, parent = "repost", tweet["quoted_status_id_str"]
    elif tweet.get("in_reply_to_status_id_str"):
        kind, parent = "reply", tweet["in_reply_to_status_id_str"]
    user = tweet.get("user") or {}
    place = tweet.get("place") or {}
    region = place.get("country_code") or country_of(user.get("location")) or "ZZ"
    event = {
        "id": tweet["id_str"],
        "ts": ts,
        "platform": "twitter",
        "kind": kind,
        "user": user.get("id_str"),
        "region": region,
        "hashtags": tags,
        "parent": parent,
        "lang": tweet.get("lang"),
    }
    return [orjson.dumps(event)]

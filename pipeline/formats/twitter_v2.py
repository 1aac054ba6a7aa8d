"""Twitter API v2 as twarc2 writes it: one response page per line (``data`` + ``includes``),
one tweet per line from the filtered stream (``data`` is an object), or flattened tweets
(``twarc2 flatten``: the tweet itself, with ``author`` and ``geo.place`` expanded).

Each tweet becomes one native event:

``id``, ``ts``      the tweet id; ``created_at`` as epoch seconds
``kind``, ``parent``  ``referenced_tweets``: ``retweeted``/``quoted`` → ``repost``,
                    ``replied_to`` → ``reply`` (parent = the referenced id); else ``post``
``hashtags``        ``entities.hashtags[].tag``, as written
``region``          the tweet's place (``geo.place_id`` → ``includes.places[].country_code``),
                    else the author's profile location (:mod:`pipeline.geocode`), else ``ZZ``
``user``, ``lang``  ``author_id``, ``lang``; ``platform`` is ``twitter``

A line that is not JSON, or holds no tweet (a counts response, an error object), raises
:class:`ConvertError` with the reason; replay reports it with file and line and goes on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from pipeline.formats.convert import ConvertError, iso_epoch, load_object
from pipeline.geocode import country_of

__all__ = ["ConvertError", "convert", "looks_like"]

KINDS = {"retweeted": "repost", "quoted": "repost", "replied_to": "reply"}


def looks_like(obj: Any) -> bool:
    """Whether a decoded first line is twarc2 output (for ``--format auto``)."""
    if not isinstance(obj, dict):
        return False
    data = obj.get("data")
    if isinstance(data, list | dict) and ("includes" in obj or "__twarc" in obj):
        return True
    return "id" in obj and "created_at" in obj and ("text" in obj or "author_id" in obj)


def _tweets(obj: dict) -> Iterator[tuple[dict, dict[str, dict], dict[str, dict]]]:
    """(tweet, users by id, places by id) for every tweet a line holds."""
    includes = obj.get("includes") or {}
    users = {u["id"]: u for u in includes.get("users") or () if "id" in u}
    places = {p["id"]: p for p in includes.get("places") or () if "id" in p}
    data = obj.get("data")
    if isinstance(data, list):
        for tweet in data:
            yield tweet, users, places
    elif isinstance(data, dict):
        yield data, users, places
    elif "id" in obj and "created_at" in obj:  # flattened: the tweet is the line
        author = obj.get("author")
        if isinstance(author, dict) and "id" in author:
            users[author["id"]] = author
        place = (obj.get("geo") or {}).get("place")
        if isinstance(place, dict) and "id" in place:
            places[place["id"]] = place
        yield obj, users, places


def _region(tweet: dict, users: dict[str, dict], places: dict[str, dict]) -> str:
    place = places.get((tweet.get("geo") or {}).get("place_id"))
    if place and place.get("country_code"):
        return place["country_code"]
    author = users.get(tweet.get("author_id")) or {}
    return country_of(author.get("location")) or "ZZ"


def to_event(tweet: dict, users: dict[str, dict], places: dict[str, dict]) -> dict[str, Any]:
    kind, parent = "post", None
    for ref in tweet.get("referenced_tweets") or ():
        if ref.get("type") in KINDS:
            kind, parent = KINDS[ref["type"]], ref.get("id")
            break
    return {
        "id": str(tweet["id"]),
        "ts": iso_epoch(tweet["created_at"]),
        "platform": "twitter",
        "kind": kind,
        "user": tweet.get("author_id"),
        "region": _region(tweet, users, places),
        "hashtags": [h["tag"] for h in (tweet.get("entities") or {}).get("hashtags") or ()],
        "parent": parent,
        "lang": tweet.get("lang"),
    }


def convert(line: bytes) -> list[bytes]:
    """The native event lines of one twarc2 line."""
    obj = load_object(line)
    out = []
    for tweet, users, places in _tweets(obj):
        if not isinstance(tweet, dict) or "created_at" not in tweet or "id" not in tweet:
            raise ConvertError("no tweets in this line (a counts response or another API object)")
        try:
            out.append(orjson.dumps(to_event(tweet, users, places)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConvertError(f"tweet without a usable id or created_at ({exc!r})") from None
    if not out and not isinstance(obj.get("data"), list):
        raise ConvertError("no tweets in this line (not a twarc2 page or tweet)")
    return out

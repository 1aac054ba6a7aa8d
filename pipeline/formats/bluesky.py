"""Bluesky Jetstream JSON: one event of the firehose per line.

Posts (``commit.collection == "app.bsky.feed.post"``, operation ``create``) become events:
id = the record's ``at://`` URI, ``ts`` = ``record.createdAt``, hashtags from the facets of type
``app.bsky.richtext.facet#tag`` and the record's ``tags``, ``langs[0]`` as ``lang``, a
``reply`` → kind ``reply`` with the parent's URI. Reposts (``app.bsky.feed.repost``) become
``repost`` events without hashtags. Everything else the firehose carries (likes, follows,
deletes, identity and account events) is not a post: it yields no event and no error.
Bluesky has no location: the region is ``ZZ``.
"""

from __future__ import annotations

from typing import Any

import orjson

from pipeline.formats.convert import ConvertError, iso_epoch, load_object

POST, REPOST = "app.bsky.feed.post", "app.bsky.feed.repost"
TAG_FACET = "app.bsky.richtext.facet#tag"


def looks_like(obj: Any) -> bool:
    return isinstance(obj, dict) and "did" in obj and "kind" in obj and "time_us" in obj


def _tags(record: dict) -> list[str]:
    tags = [
        feature.get("tag")
        for facet in record.get("facets") or ()
        for feature in facet.get("features") or ()
        if feature.get("$type") == TAG_FACET and isinstance(feature.get("tag"), str)
    ]
    return tags + [t for t in record.get("tags") or () if isinstance(t, str)]


def convert(line: bytes) -> list[bytes]:
    obj = load_object(line)
    if not looks_like(obj):
        raise ConvertError("not a Jetstream event (no did, kind or time_us)")
    commit = obj.get("commit") or {}
    collection = commit.get("collection")
    if obj["kind"] != "commit" or commit.get("operation") != "create":
        return []
    if collection not in (POST, REPOST):
        return []
    record = commit.get("record") or {}
    uri = f"at://{obj['did']}/{collection}/{commit.get('rkey')}"
    try:
        ts = iso_epoch(record["createdAt"])
    except (KeyError, TypeError, ValueError):
        ts = obj["time_us"] / 1e6  # the relay's clock, when the record's own is unusable
    kind, parent, tags = "post", None, []
    if collection == REPOST:
        kind, parent = "repost", (record.get("subject") or {}).get("uri")
    else:
        tags = _tags(record)
        reply = record.get("reply")
        if isinstance(reply, dict):
            kind, parent = "reply", (reply.get("parent") or {}).get("uri")
    langs = record.get("langs") or [None]
    event = {
        "id": uri,
        "ts": ts,
        "platform": "bluesky",
        "kind": kind,
        "user": obj["did"],
        "region": "ZZ",
        "hashtags": tags,
        "parent": parent,
        "lang": langs[0],
    }
    return [orjson.dumps(event)]

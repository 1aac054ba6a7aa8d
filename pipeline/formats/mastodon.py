"""Mastodon status JSON (the REST API's ``Status`` entity), one status per line.

``id``, ``created_at`` (ISO), ``tags[].name``, ``account.id``, ``language``; a boost
(``reblog``) → ``repost`` with the boosted status's id and tags; ``in_reply_to_id`` → ``reply``.
Statuses carry no location: the region is ``ZZ``. Ids are prefixed with the instance when the
status has a ``uri`` (ids are only unique per instance).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import orjson

from pipeline.formats.convert import ConvertError, iso_epoch, load_object


def looks_like(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and "created_at" in obj
        and "account" in obj
        and ("tags" in obj or "reblog" in obj)
    )


def _id(status: dict) -> str:
    host = urlsplit(status.get("uri") or "").netloc
    return f"{host}/{status['id']}" if host else str(status["id"])


def convert(line: bytes) -> list[bytes]:
    status = load_object(line)
    if not looks_like(status) or "id" not in status:
        raise ConvertError("not a Mastodon status (no id, created_at, account or tags)")
    kind, parent, source = "post", None, status
    if isinstance(status.get("reblog"), dict):
        kind, parent, source = "repost", _id(status["reblog"]), status["reblog"]
    elif status.get("in_reply_to_id"):
        kind, parent = "reply", str(status["in_reply_to_id"])
    try:
        ts = iso_epoch(status["created_at"])
    except (TypeError, ValueError):
        raise ConvertError(f"created_at {status['created_at']!r} is not an ISO time") from None
    event = {
        "id": _id(status),
        "ts": ts,
        "platform": "mastodon",
        "kind": kind,
        "user": str((status.get("account") or {}).get("id")),
        "region": "ZZ",
        "hashtags": [t["name"] for t in source.get("tags") or () if "name" in t],
        "parent": parent,
        "lang": status.get("language"),
    }
    return [orjson.dumps(event)]

"""CSV and TSV dumps: one post per row, columns mapped to the event model.

Columns are found by name (case-insensitive, first match wins), or given with ``--map
field=column,...`` for the fields ``id``, ``ts``, ``hashtags``, ``text``, ``region``, ``user``,
``lang``, ``parent``, ``kind`` and ``platform``:

- ``ts``: epoch seconds (milliseconds when above 10^11), ISO 8601, or Twitter's
  ``Wed Oct 15 20:21:00 +0000 2017``.
- ``hashtags``: a JSON list, or tags separated by commas, semicolons, pipes or spaces (a
  leading ``#`` is fine); without a hashtag column, hashtags are extracted from ``text`` by
  Twitter's rules (:mod:`pipeline.formats.hashtag_text`).
- ``region``: an ISO alpha-2 code, else a place name (:mod:`pipeline.geocode`), else ``ZZ``.
- ``id``: the column, else ``<file>:<row>`` (stable across replays of the same file).

The delimiter (``,``, tab, ``;`` or ``|``) is sniffed from the header. A row without a usable
time is reported with its line number and skipped.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, BinaryIO

import orjson

from pipeline.formats.convert import ConvertError
from pipeline.formats.hashtag_text import extract_hashtags
from pipeline.geocode import country_of
from pipeline.regions import ISO_ALPHA2

FIELDS = ("id", "ts", "hashtags", "text", "region", "user", "lang", "parent", "kind", "platform")
COMMON_NAMES: dict[str, tuple[str, ...]] = {
    "id": ("id", "id_str", "tweet_id", "post_id", "status_id", "uri"),
    "ts": ("ts", "created_at", "createdat", "timestamp", "time", "date", "datetime", "published",
           "posted_at"),
    "hashtags": ("hashtags", "tags", "hashtag", "entities.hashtags"),
    "text": ("text", "full_text", "content", "body", "message", "tweet", "post"),
    "region": ("region", "country_code", "countrycode", "place_country_code", "country",
               "location", "user_location", "author.location"),
    "user": ("user", "author_id", "user_id", "author", "username", "screen_name", "account"),
    "lang": ("lang", "language"),
    "parent": ("parent", "in_reply_to_status_id", "in_reply_to_id", "referenced_tweet_id",
               "retweeted_status_id"),
    "kind": ("kind", "type"),
    "platform": ("platform", "source_platform"),
}  # fmt: skip
KINDS = {"post", "repost", "reply", "reaction"}
TWITTER_TIME = "%a %b %d %H:%M:%S %z %Y"
_SEPARATORS = re.compile(r"[,;|\s]+")


def parse_mapping(text: str | None) -> dict[str, str]:
    """``field=column,...`` → {field: column}; a one-line error for anything else."""
    mapping: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        name, sep, column = part.partition("=")
        if not sep or name.strip() not in FIELDS or not column.strip():
            raise ConvertError(
                f"--map {part!r}: expected FIELD=COLUMN with FIELD one of {', '.join(FIELDS)}"
            )
        mapping[name.strip()] = column.strip()
    return mapping


def looks_like(header: bytes) -> bool:
    """Whether a first line is a CSV/TSV header naming at least a time column."""
    names = {n.strip().strip('"').casefold() for n in re.split(rb"[,\t;|]", header)[:200]
             for n in [n.decode("utf-8", "replace")]}  # fmt: skip
    return len(names) > 1 and bool(names & set(COMMON_NAMES["ts"]))


def parse_time(value: str) -> float:
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        return number / 1000 if number > 1e11 else number
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return datetime.strptime(value, TWITTER_TIME).timestamp()


def parse_hashtags(value: str) -> list[str]:
    value = value.strip()
    if value.startswith("["):
        try:
            tags = orjson.loads(value)
        except orjson.JSONDecodeError:
            tags = None
        if isinstance(tags, list):
            return [t if isinstance(t, str) else str(t.get("tag") or t.get("text")) for t in tags]
    return [t.lstrip("#＃") for t in _SEPARATORS.split(value) if t.lstrip("#＃")]


def _region(value: str | None) -> str:
    if not value:
        return "ZZ"
    code = value.strip().upper()
    if code in ISO_ALPHA2:
        return code
    return country_of(value) or "ZZ"


def columns_for(header: list[str], mapping: Mapping[str, str]) -> dict[str, int]:
    index = {name.strip().casefold(): i for i, name in reversed(list(enumerate(header)))}
    found: dict[str, int] = {}
    for field in FIELDS:
        if field in mapping:
            column = mapping[field].casefold()
            if column not in index:
                raise ConvertError(f"--map {field}={mapping[field]}: no such column")
            found[field] = index[column]
            continue
        for name in COMMON_NAMES[field]:
            if name in index:
                found[field] = index[name]
                break
    if "ts" not in found:
        raise ConvertError("no time column: name it with --map ts=COLUMN")
    return found


def rows(
    stream: BinaryIO, name: str, mapping: Mapping[str, str]
) -> Iterator[tuple[int, bytes | ConvertError]]:
    """``(line number, native event line or the error of that row)`` for every row."""
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="")
    head = text.readline()
    try:
        dialect = csv.Sniffer().sniff(head, delimiters=",\t;|")
    except csv.Error:
        dialect = csv.excel
    header = next(csv.reader([head], dialect))
    cols = columns_for(header, mapping)
    reader = csv.reader(text, dialect)
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        line = reader.line_num + 1  # the header was line 1

        def get(field: str, row: list[str] = row) -> str | None:
            i = cols.get(field)
            return row[i] if i is not None and i < len(row) and row[i] != "" else None

        try:
            ts = parse_time(get("ts") or "")
        except ValueError:
            yield line, ConvertError(f"no usable time in column {header[cols['ts']]!r}")
            continue
        tags_value = get("hashtags")
        tags = (
            parse_hashtags(tags_value)
            if tags_value is not None
            else extract_hashtags(get("text") or "")
        )
        kind = (get("kind") or "post").strip().lower()
        event: dict[str, Any] = {
            "id": get("id") or f"{name}:{line}",
            "ts": ts,
            "platform": get("platform") or "unknown",
            "kind": kind if kind in KINDS else "post",
            "user": get("user"),
            "region": _region(get("region")),
            "hashtags": tags,
            "parent": get("parent"),
            "lang": get("lang"),
        }
        yield line, orjson.dumps(event)

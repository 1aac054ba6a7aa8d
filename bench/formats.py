"""Replay's side: events/s parsed per format, and end to end into the embedded broker.

    python -m bench.formats [--events N]

Every format's input is built from the same Zipf workload (bench.workload) so the figures
compare parsers, not data; "parse" is converting and ordering (what replay does before
sending), "replay" sends native envelopes to a real broker and waits for the acks.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from bench.workload import events
from pipeline.broker import EmbeddedBroker, free_port
from pipeline.replay import ReplayStats, Selection, replay, selected


def as_twitter_v2(e: dict) -> dict:
    when = datetime.fromtimestamp(e["ts"], UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    tweet = {"id": e["id"], "created_at": when, "author_id": e["user"], "text": "x", "lang": "en",
             "entities": {"hashtags": [{"tag": t} for t in e["hashtags"]]}}  # fmt: skip
    return {"data": [tweet], "includes": {"users": [{"id": e["user"], "location": "Paris"}]}}


def as_twitter_v1(e: dict) -> dict:
    when = datetime.fromtimestamp(e["ts"], UTC).strftime("%a %b %d %H:%M:%S +0000 %Y")
    tags = [{"text": t} for t in e["hashtags"]]
    return {"id_str": e["id"], "created_at": when, "user": {"id_str": e["user"]}, "lang": "en",
            "entities": {"hashtags": tags}, "place": None}  # fmt: skip


def as_mastodon(e: dict) -> dict:
    when = datetime.fromtimestamp(e["ts"], UTC).isoformat()
    return {"id": e["id"], "created_at": when, "account": {"id": e["user"]},
            "tags": [{"name": t} for t in e["hashtags"]], "language": "en"}  # fmt: skip


def as_bluesky(e: dict) -> dict:
    when = datetime.fromtimestamp(e["ts"], UTC).isoformat().replace("+00:00", "Z")
    facets = [{"features": [{"$type": "app.bsky.richtext.facet#tag", "tag": t}]}
              for t in e["hashtags"]]  # fmt: skip
    record = {"createdAt": when, "langs": ["en"], "facets": facets, "text": "x"}
    commit = {"operation": "create", "collection": "app.bsky.feed.post", "rkey": e["id"],
              "record": record}  # fmt: skip
    return {"did": f"did:plc:{e['user']}", "time_us": int(e["ts"] * 1e6), "kind": "commit",
            "commit": commit}  # fmt: skip


def write_inputs(n: int, directory: Path) -> dict[str, Path]:
    sample = [orjson.loads(line) for line in events(n)]
    paths = {"native": directory / "native.jsonl"}
    paths["native"].write_bytes(b"\n".join(orjson.dumps(e) for e in sample))
    for name, convert in (("twitter-v2", as_twitter_v2), ("twitter-v1", as_twitter_v1),
                          ("mastodon", as_mastodon), ("bluesky", as_bluesky)):  # fmt: skip
        paths[name] = directory / f"{name}.jsonl"
        paths[name].write_bytes(b"\n".join(orjson.dumps(convert(e)) for e in sample))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "created_at", "text", "country_code"])
    for e in sample:
        writer.writerow([e["id"], e["ts"], " ".join(f"#{t}" for t in e["hashtags"]), e["region"]])
    paths["csv"] = directory / "dump.csv"
    paths["csv"].write_text(buffer.getvalue())
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="spread-bench-formats-") as tmp:
        paths = write_inputs(args.events, Path(tmp))
        print(f"{'format':<12} {'parse, events/s':>16}")
        for name, path in paths.items():
            t = time.perf_counter()
            n = sum(1 for _ in selected([path], ReplayStats(), Selection(fmt=name)))
            print(f"{name:<12} {n / (time.perf_counter() - t):>16,.0f}", flush=True)
        with EmbeddedBroker(port=free_port(), log_path=str(Path(tmp) / "broker.log")) as b:
            t = time.perf_counter()
            stats = asyncio.run(replay([paths["native"]], b.bootstrap))
            rate = stats.events / (time.perf_counter() - t)
        print(f"replay native --speed max into the broker: {rate:,.0f} events/s (acknowledged)")
        print(f"{args.events:,} events per format, one core for parsing")


if __name__ == "__main__":
    main()

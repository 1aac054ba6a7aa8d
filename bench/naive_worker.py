"""The naive Faust design, for comparison: Record model, group_by, a windowed-table write
per event. This is the idiom DESIGN "Dataflow" measured at about 2,000 events/s.

    python -m bench.naive_worker BROKER PORT
serves the number of events counted at http://127.0.0.1:PORT/count.
"""

from __future__ import annotations

import sys
import tempfile

import faust


class Post(faust.Record, serializer="json"):
    id: str
    ts: float
    hashtags: list[str]
    region: str = "ZZ"


class Tagged(faust.Record, serializer="json"):
    hashtag: str
    ts: float


def main() -> None:
    broker, port = sys.argv[1], int(sys.argv[2])
    app = faust.App(
        "bench-naive",
        broker=f"kafka://{broker}",
        store="memory://",
        datadir=tempfile.mkdtemp(prefix="bench-naive-"),
        web_port=port,
        web_bind="127.0.0.1",
        broker_session_timeout=4,
        broker_heartbeat_interval=1,
        consumer_auto_offset_reset="earliest",
        topic_partitions=8,
        topic_replication_factor=1,
    )
    posts = app.topic("naive-posts", value_type=Post)
    tagged = app.topic("naive-tagged", value_type=Tagged, partitions=8)
    counts = app.Table("naive-counts", default=int, partitions=8).tumbling(60, expires=None)
    seen = {"events": 0, "writes": 0}

    @app.agent(posts)
    async def split(stream):
        async for post in stream:
            for tag in {t.casefold() for t in post.hashtags}:
                await tagged.send(key=tag, value=Tagged(tag, post.ts))
            seen["events"] += 1

    @app.agent(tagged)
    async def count(stream):
        async for t in stream.group_by(Tagged.hashtag):
            counts[t.hashtag] += 1
            seen["writes"] += 1

    @app.page("/count")
    async def count_page(web, request):
        return web.json(seen)

    faust.Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()

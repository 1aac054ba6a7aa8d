"""Stage 1: records of ``posts`` → validated, normalised, pre-aggregated ``hashtag-deltas``.

Per record (one event or an envelope of many): decode and judge every line
(:func:`pipeline.aggregate.summarise`), send one delta record per target partition of
``hashtag-deltas`` tagged with the source partition and offset, dead-letter rejected lines to
``posts-rejected`` (value = the line's exact bytes, headers ``reason`` and ``source``), and
update this partition's progress (accepted, rejected by reason, watermark) in a
changelog-backed table keyed by the source partition.

Redelivery (a crash or rebalance before the offset commit): deltas are sent again, and stage 2
skips them by their source offset; the progress row records the last offset it counted, so
counts and dead letters are not repeated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipeline import deltas as wire
from pipeline.aggregate import summarise
from pipeline.events import ENVELOPE_FORMAT, ENVELOPE_HEADER, REASONS

if TYPE_CHECKING:
    import faust

    from agents.app import Topology

PROGRESS_TABLE = "ingest-progress"


def empty_progress() -> dict[str, Any]:
    return {"off": -1, "acc": 0, "rej": {}, "wm": None}


class Ingest:
    def __init__(
        self,
        app: faust.App,
        posts: faust.TopicT,
        rejected: faust.TopicT,
        deltas: faust.TopicT,
        topology: Topology,
    ) -> None:
        self.app = app
        self.progress = app.Table(PROGRESS_TABLE, default=None, partitions=topology.posts)
        n_deltas = topology.deltas
        partition_cache: dict[str, int] = {}

        @app.agent(posts, name="ingest")
        async def ingest(stream: faust.StreamT) -> None:
            progress = self.progress
            async for event in stream.events():
                msg = event.message
                sp, so = msg.partition, msg.offset
                summary = summarise(event.value, _is_envelope(msg.headers))
                by_target = wire.split_by_partition(summary.tags, n_deltas, partition_cache)
                for target, tags in by_target.items():
                    await deltas.send(
                        value=wire.encode(sp, so, summary.max_ts, tags), partition=target
                    )
                row = progress.get(sp) or empty_progress()
                if so <= row["off"]:
                    continue  # counted before this redelivery
                source = f"{msg.topic}/{sp}/{so}".encode()
                for reason, line in summary.rejected:
                    await rejected.send(
                        key=source,
                        value=line,
                        headers=[("reason", reason.encode()), ("source", source)],
                    )
                progress[sp] = _advance(row, so, summary)

        self.agent = ingest

    def totals(self, partitions: set[int]) -> tuple[int, dict[str, int], float | None]:
        """(accepted, rejected by reason, watermark) over the given ``posts`` partitions."""
        accepted = 0
        rejected = dict.fromkeys(REASONS, 0)
        wm: float | None = None
        for p in partitions:
            row = self.progress.data.get(p)
            if not row:
                continue
            accepted += row["acc"]
            for reason, n in row["rej"].items():
                rejected[reason] = rejected.get(reason, 0) + n
            if row["wm"] is not None and (wm is None or row["wm"] > wm):
                wm = row["wm"]
        return accepted, rejected, wm


def _is_envelope(headers: Any) -> bool:
    if not headers:
        return False
    items = headers.items() if hasattr(headers, "items") else headers
    return any(k == ENVELOPE_HEADER and v == ENVELOPE_FORMAT for k, v in items)


def _advance(row: dict[str, Any], offset: int, summary: Any) -> dict[str, Any]:
    rejected = dict(row["rej"])
    for reason, _line in summary.rejected:
        rejected[reason] = rejected.get(reason, 0) + 1
    wm = row["wm"]
    if summary.max_ts is not None and (wm is None or summary.max_ts > wm):
        wm = summary.max_ts
    return {"off": offset, "acc": row["acc"] + summary.accepted, "rej": rejected, "wm": wm}

"""Stage 1: records of ``posts`` → validated, normalised, pre-aggregated ``hashtag-deltas``.

Records are taken in batches (``stream.take_events``). Per record (one event or an envelope
of many): decode and judge every line (:func:`pipeline.aggregate.summarise`) and dead-letter
rejected lines to ``posts-rejected`` (value = the line's exact bytes, headers ``reason`` and
``source``). Per batch: one delta record per target partition of ``hashtag-deltas``, holding
one entry per source record tagged with its source partition and offset, and one write per
source partition of the progress table (accepted, rejected by reason, watermark, last offset
counted), changelog-backed and keyed by the source partition.

Redelivery (a crash or rebalance before the offset commit): deltas are sent again, and stage 2
skips them by their source offset; the progress row records the last offset it counted, so
counts and dead letters are not repeated. Faust commits only after flushing the producer, and
the batch is acknowledged only after this code ran, so a committed offset implies its deltas,
dead letters and progress were all handed to the broker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agents import changelog
from pipeline import deltas as wire
from pipeline.aggregate import RecordSummary, summarise
from pipeline.events import ENVELOPE_FORMAT, ENVELOPE_HEADER, REASONS

if TYPE_CHECKING:
    import faust

    from agents.app import Topology

PROGRESS_TABLE = "ingest-progress"
# Records per batch: envelopes hold up to 1,000 events each, so a batch is up to ~64k events;
# single-event records make small batches cheap too.
BATCH_RECORDS = 64
BATCH_SECONDS = 0.2


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
            async for batch in stream.take_events(BATCH_RECORDS, within=BATCH_SECONDS):
                by_target: dict[int, list[wire.Entry]] = {}
                rows: dict[int, dict[str, Any]] = {}
                dead: list[tuple[bytes, str, bytes]] = []
                for event in batch:
                    msg = event.message
                    sp, so = msg.partition, msg.offset
                    summary = summarise(event.value, _is_envelope(msg.headers))
                    split = wire.split_by_partition(summary.tags, n_deltas, partition_cache)
                    for target, tags in split.items():
                        by_target.setdefault(target, []).append(
                            wire.entry(sp, so, summary.max_ts, tags)
                        )
                    row = rows.get(sp) or progress.data.get(sp) or empty_progress()
                    if so <= row["off"]:
                        continue  # counted before this redelivery
                    rows[sp] = _advance(row, so, summary)
                    source = f"{msg.topic}/{sp}/{so}".encode()
                    dead.extend((source, reason, line) for reason, line in summary.rejected)
                # The batch is acknowledged only after this body ran, and Faust flushes the
                # producer before it commits, so all of this reaches the broker first.
                await changelog.write(app, (progress, [(sp, sp, row) for sp, row in rows.items()]))
                for source, reason, line in dead:
                    await rejected.send(
                        key=source,
                        value=line,
                        headers=[("reason", reason.encode()), ("source", source)],
                    )
                for target, entries in by_target.items():
                    await deltas.send(value=wire.encode(entries), partition=target)

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


def _advance(row: dict[str, Any], offset: int, summary: RecordSummary) -> dict[str, Any]:
    rejected = dict(row["rej"])
    for reason, _line in summary.rejected:
        rejected[reason] = rejected.get(reason, 0) + 1
    wm = row["wm"]
    if summary.max_ts is not None and (wm is None or summary.max_ts > wm):
        wm = summary.max_ts
    return {"off": offset, "acc": row["acc"] + summary.accepted, "rej": rejected, "wm": wm}

"""``spread replay --dry-run``: what a replay would send and what the worker would make of it,
without a broker. Every event is judged by the worker's own code (:func:`summarise`), so the
rejects by reason here are the ones ``spread_events_rejected_total`` would show."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pipeline.aggregate import summarise
from pipeline.replay import ReplayStats, Selection, selected


@dataclass
class DryRun:
    stats: ReplayStats
    accepted: int = 0
    rejected: Counter = field(default_factory=Counter)
    tags: Counter = field(default_factory=Counter)
    regions: Counter = field(default_factory=Counter)
    first_ts: float | None = None
    last_ts: float | None = None


def dry_run(paths: Sequence[str | Path], selection: Selection) -> DryRun:
    out = DryRun(ReplayStats())
    for ts, line in selected(paths, out.stats, selection):
        s = summarise(line, envelope=True)
        out.stats.events += 1
        out.accepted += s.accepted
        out.rejected.update(reason for reason, _ in s.rejected)
        for tag, delta in s.tags.items():
            out.tags[tag] += delta[0]
            out.regions.update(delta[1])
        if s.accepted and ts is not None:
            out.first_ts = ts if out.first_ts is None else min(out.first_ts, ts)
            out.last_ts = ts if out.last_ts is None else max(out.last_ts, ts)
    return out


def _iso(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def report(run: DryRun, top: int = 10) -> list[str]:
    """Plain lines; the same on a terminal and in a pipe."""
    s = run.stats
    rejected = sum(run.rejected.values())
    lines = [
        f"events      {s.events:,} (accepted {run.accepted:,}, rejected {rejected:,})",
        f"time span   {_iso(run.first_ts)} .. {_iso(run.last_ts)}",
    ]
    if run.rejected:
        lines.append(
            "rejected    " + ", ".join(f"{r} {n:,}" for r, n in run.rejected.most_common())
        )
    if s.skipped:
        lines.append(
            f"skipped     {s.skipped:,} source lines with no event (first: {s.problems[0]})"
        )
    if s.filtered:
        lines.append(f"filtered    {s.filtered:,} events outside --from/--to/--hashtag")
    if s.out_of_order:
        lines.append(f"disorder    {s.out_of_order:,} events beyond the reorder buffer")
    lines.append(f"hashtags    {len(run.tags):,} distinct; top {top}:")
    lines += [f"  {n:>10,}  {tag}" for tag, n in run.tags.most_common(top)]
    lines.append(f"regions     {len(run.regions):,} (posts x hashtags by region); top {top}:")
    lines += [f"  {n:>10,}  {region}" for region, n in run.regions.most_common(top)]
    return lines

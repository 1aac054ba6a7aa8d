"""``spread replay --dry-run``: what a replay would send and what the worker would make of it,
without a broker. The events are read and judged by :func:`pipeline.analyze.analyze` (the
worker's own code), so the rejects by reason here are the ones
``spread_events_rejected_total`` would show; this module only writes the summary."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from pipeline.analyze import Analysis


def _iso(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def report(run: Analysis, top: int = 10) -> list[str]:
    """Plain lines; the same on a terminal and in a pipe."""
    s = run.stats
    rejected = sum(run.rejected.values())
    regions: Counter = Counter()
    for by_region in run.regions.values():
        regions.update(by_region)
    lines = [
        f"events      {run.accepted + rejected:,} (accepted {run.accepted:,}, "
        f"rejected {rejected:,})",
        f"time span   {_iso(run.earliest)} .. {_iso(run.watermark)}",
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
    lines.append(f"hashtags    {len(run.posts):,} distinct; top {top}:")
    lines += [f"  {n:>10,}  {tag}" for tag, n in run.posts.most_common(top)]
    lines.append(f"regions     {len(regions):,} (posts x hashtags by region); top {top}:")
    lines += [f"  {n:>10,}  {region}" for region, n in regions.most_common(top)]
    return lines

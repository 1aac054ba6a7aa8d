"""``spread report``: one hashtag's spread, as charts a person would rather look at than read.

The numbers come from :func:`pipeline.analyze.analyze`, the worker's own functions over the
file; this module turns them into time series (:func:`build`, pure) and draws them with
matplotlib (:func:`render`), as a PNG or as a self-contained HTML page (the charts as inline
SVG, with a table of the final values). Four panels:

- posts per minute over time, with the 15-minute rate the dashboards show;
- cumulative posts by region (the eight largest regions, the rest summed);
- R_t with its 95 % band every 10 minutes of event time, and a line at 1;
- the spread timeline: when each region saw its first post.
"""

from __future__ import annotations

import html
import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pipeline.analyze import Analysis
from pipeline.settings import SettingsError
from pipeline.virality.generation import mean_lag
from pipeline.virality.reproduction import WINDOW

RT_STEP_MINUTES = 10
TOP_REGIONS = 8


@dataclass
class Report:
    hashtag: str
    minutes: list[tuple[int, int]] = field(default_factory=list)  # (minute start, posts)
    rate_15m: list[tuple[int, float]] = field(default_factory=list)
    region_cumulative: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    rt: list[tuple[int, float, float, float]] = field(default_factory=list)  # t, mean, lo, hi
    first_seen: list[tuple[str, float]] = field(default_factory=list)  # in order
    summary: dict[str, str] = field(default_factory=dict)


def build(analysis: Analysis, tag: str) -> Report:
    """The report's series for ``tag`` (normalised) from an analysis made with
    ``detail=tag``."""
    if tag not in analysis.posts:
        raise SettingsError(f"no accepted post carries #{tag}")
    report = Report(tag)
    counts = analysis.minutes[tag]
    first, last = min(counts), max(counts)
    report.minutes = [(m, counts.get(m, 0)) for m in range(first, last + 60, 60)]
    window: list[int] = []
    for m, n in report.minutes:
        window.append(n)
        report.rate_15m.append((m, sum(window[-15:]) / 15))

    totals = analysis.regions[tag]
    top = [r for r, _ in totals.most_common(TOP_REGIONS)]
    hours = sorted({h for _, h in analysis.region_hours})
    running: Counter[str] = Counter()
    for h in hours:
        for region in list(totals):
            n = analysis.region_hours.get((region, h), 0)
            running[region if region in top else "other"] += n
        for name in [*top, *(["other"] if len(totals) > len(top) else [])]:
            report.region_cumulative.setdefault(name, []).append((h + 3600, running[name]))

    weights = analysis.weights()
    for m in range(first, last + 60, 60 * RT_STEP_MINUTES):
        estimate = analysis.reproduction(tag, at=m + 30)
        if estimate is not None:
            report.rt.append((m, estimate.mean, estimate.lower, estimate.upper))

    report.first_seen = sorted(analysis.first_seen[tag].items(), key=lambda kv: kv[1])
    signals = analysis.signals(tag)
    rt_now = signals["reproduction_number"]
    report.summary = {
        "posts": f"{analysis.posts[tag]:,}",
        "regions reached": f"{len(totals)}",
        "unique users": f"{signals['unique_users']:,.0f}",
        "R_t at the end (95 % band)": (
            f"{rt_now['mean']:.2f} ({rt_now['lower']:.2f}-{rt_now['upper']:.2f})" if rt_now else "-"
        ),
        "trend score at the end": f"{signals['trend_score'] or 0:.1f}",
        "generation interval (mean)": (
            f"{mean_lag(weights):.0f} min"
            + (" (learned)" if analysis.parents.interval.learned and not analysis.interval else "")
        ),
        "first post": _when(report.first_seen[0][1]),
        "last post": _when(last + 59),
    }
    return report


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _figure(report: Report):  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    def dt(ts: float) -> datetime:
        return datetime.fromtimestamp(ts, UTC)

    fig, axes = plt.subplots(2, 2, figsize=(14, 9), constrained_layout=True)
    fig.suptitle(f"#{report.hashtag}: how it spread (event time, UTC)", fontsize=14)

    ax = axes[0][0]
    ax.plot(
        [dt(m) for m, _ in report.minutes],
        [n for _, n in report.minutes],
        lw=0.6,
        color="0.6",
        label="per minute",
    )
    ax.plot(
        [dt(m) for m, _ in report.rate_15m],
        [r for _, r in report.rate_15m],
        lw=1.6,
        color="C0",
        label="15-minute rate",
    )
    ax.set_title("Posts per minute")
    ax.legend(loc="upper left")

    ax = axes[0][1]
    for i, (region, series) in enumerate(report.region_cumulative.items()):
        ax.plot(
            [dt(h) for h, _ in series],
            [n for _, n in series],
            lw=1.4,
            label=region,
            color="0.5" if region == "other" else f"C{i % 10}",
        )
    ax.set_title("Cumulative posts by region")
    ax.legend(loc="upper left", ncol=3, fontsize=8)

    ax = axes[1][0]
    if report.rt:
        times = [dt(t) for t, *_ in report.rt]
        ax.fill_between(
            times,
            [lo for *_, lo, _ in report.rt],
            [hi for *_, hi in report.rt],
            color="C3",
            alpha=0.2,
            label="95 % band",
        )
        ax.plot(times, [m for _, m, _, _ in report.rt], color="C3", lw=1.6, label="R_t")
    ax.axhline(1, color="black", lw=0.8, ls="--")
    ax.set_title(f"Reproduction number R_t (last {WINDOW} min, every {RT_STEP_MINUTES} min)")
    ax.legend(loc="upper right")

    ax = axes[1][1]
    regions = [r for r, _ in report.first_seen]
    ax.scatter([dt(ts) for _, ts in report.first_seen], range(len(regions)), color="C2", s=18)
    ax.set_yticks(range(len(regions)), regions, fontsize=7 if len(regions) > 30 else 9)
    ax.invert_yaxis()
    ax.set_title("First post by region (the spread timeline)")

    for ax in axes.flat:
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b %H:%M", tz=UTC))
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        ax.grid(alpha=0.3)
    return fig


def render(report: Report, out: str | Path) -> None:
    """Write ``out``: ``.png`` (the charts) or ``.html`` (charts as SVG + the summary)."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".png", ".html", ".htm"):
        raise SettingsError(f"--out {out}: expected a .png or .html file")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SettingsError(
            "spread report needs matplotlib: pip install 'hashtag-spread[report]'"
        ) from None
    import matplotlib.pyplot as plt

    fig = _figure(report)
    try:
        if suffix == ".png":
            fig.savefig(out, dpi=110)
            return
        svg = io.StringIO()
        fig.savefig(svg, format="svg")
    finally:
        plt.close(fig)
    rows = "\n".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
        for k, v in report.summary.items()
    )
    timeline = "\n".join(
        f"<tr><td>{html.escape(r)}</td><td>{_when(ts)}</td></tr>" for r, ts in report.first_seen
    )
    title = html.escape(f"#{report.hashtag}")
    out.write_text(
        f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}: spread report</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}}
table{{border-collapse:collapse;margin:1em 0}}th,td{{padding:.2em .8em;text-align:left;
border-bottom:1px solid #ddd}}svg{{max-width:100%;height:auto}}</style></head>
<body><h1>{title}: how it spread</h1>
<p>Computed by <code>spread analyze</code>'s functions, in event time (UTC).</p>
<table>{rows}</table>
{svg.getvalue()[svg.getvalue().index("<svg") :]}
<h2>First post by region</h2>
<table><tr><th>region</th><th>first post</th></tr>
{timeline}</table>
</body></html>
""",
        encoding="utf-8",
    )

"""``spread``: the command line.

Commands that need no Faust live here; ``spread worker`` is added by :mod:`agents.cli`, which is
the console-script entry point, so that ``pipeline`` never imports ``agents``.

Errors a user can fix (bad argument, unreadable file, busy port, unreachable broker) are one
line on stderr and exit code 2; never a traceback.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import click

from pipeline import __version__, security
from pipeline.broker import BrokerError, EmbeddedBroker
from pipeline.formats import FORMATS
from pipeline.formats.native import FormatError
from pipeline.ordering import DEFAULT_BUFFER
from pipeline.producer import BrokerUnavailable
from pipeline.settings import (
    DEFAULT_MAX_HASHTAGS,
    DEFAULT_PARTITIONS,
    SettingsError,
    parse_broker,
)
from pipeline.simulate.scenario import ScenarioError
from pipeline.top import RANKINGS

USER_ERRORS = (BrokerError, BrokerUnavailable, FormatError, ScenarioError, SettingsError)


class IsoTime(click.ParamType):
    """An ISO 8601 time (UTC unless it says otherwise), as epoch seconds."""

    name = "ISO-TIME"

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        if value is None or isinstance(value, float):
            return value
        try:
            when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"{value!r} is not an ISO time like 2017-10-15T20:00Z", param, ctx)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.timestamp()


# Options several commands share, declared once.
broker_option = click.option(
    "--broker",
    "broker_addr",
    default=None,
    metavar="HOST:PORT",
    help="Kafka bootstrap server [$KAFKA_BOOTSTRAP, then localhost:9092].",
)
envelope_option = click.option(
    "--envelope",
    type=click.IntRange(1, 100_000),
    default=1000,
    show_default=True,
    help="Events per record (JSON lines); 1 sends one event per record.",
)
generation_interval_option = click.option(
    "--generation-interval",
    "interval_spec",
    default="learned",
    show_default=True,
    metavar="learned|gamma:MEAN:CV|lognormal:MEAN:CV",
    help="For R_t: learned from the delays between posts and the replies/reposts naming "
    "them, or a distribution with its mean in minutes and coefficient of variation.",
)
posts_partitions_option = click.option(
    "--partitions",
    type=click.IntRange(1, 1024),
    default=DEFAULT_PARTITIONS,
    show_default=True,
    help="Partitions of 'posts' if it has to be created.",
)


def event_time_window(command):  # type: ignore[no-untyped-def]
    """``--from``/``--to``: the events to take, by event time (``--to`` excluded)."""
    command = click.option(
        "--to", "until", type=IsoTime(), help="Only events before this ISO time."
    )(command)
    return click.option(
        "--from", "since", type=IsoTime(), help="Only events at or after this ISO time."
    )(command)


class Speed(click.ParamType):
    """``N`` (event seconds per wall second, > 0) or ``max``."""

    name = "N|max"

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        if value is None or isinstance(value, float):
            return value
        if str(value).lower() == "max":
            return None
        try:
            speed = float(value)
        except ValueError:
            self.fail(f"{value!r} is not a number or 'max'", param, ctx)
        if not speed > 0 or speed == float("inf"):
            self.fail(f"{value!r} must be a positive number or 'max'", param, ctx)
        return speed


def fail(message: str, code: int = 2) -> None:
    click.echo(f"spread: error: {message}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="spread")
def cli() -> None:
    """hashtag-spread: watch hashtags spread across platforms and regions in real time."""


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=9092, show_default=True, type=click.IntRange(1, 65535))
def broker(host: str, port: int) -> None:
    """Run the embedded Kafka-compatible broker (Tansu, memory only) until SIGINT/SIGTERM."""
    b = EmbeddedBroker(host=host, port=port)
    try:
        b.start()
    except BrokerError as exc:
        fail(str(exc))
    click.echo(f"broker listening on {b.bootstrap} (memory only: topics are lost on exit)")
    stop = {"now": False}

    def _stop(signum, frame):  # type: ignore[no-untyped-def]
        stop["now"] = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stop["now"] and b.process and b.process.poll() is None:
            time.sleep(0.2)
        code = b.process.poll() if b.process else 0
    finally:
        b.stop()
    if code:
        fail(f"broker exited with code {code}", 1)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, allow_dash=True))
@broker_option
@click.option(
    "--speed",
    type=Speed(),
    default="max",
    show_default=True,
    help="Event seconds per wall second (60 = an hour in a minute), or max.",
)
@envelope_option
@posts_partitions_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="auto",
    show_default=True,
    help="File format; auto looks at each file's first line.",
)
@click.option(
    "--map",
    "mapping",
    metavar="FIELD=COLUMN,...",
    help="CSV/TSV: columns of the event fields (id, ts, hashtags, text, region, user, lang, "
    "parent, kind, platform); common names are found without it.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Stop at the first source line that holds no event (other formats than native).",
)
@click.option(
    "--sort",
    is_flag=True,
    help="Sort each file by event time in memory (for files more disordered than the buffer).",
)
@click.option(
    "--reorder-buffer",
    type=click.IntRange(1),
    default=DEFAULT_BUFFER,
    show_default=True,
    help="Events held per file to repair disorder; older events past it are sent as they come.",
)
@event_time_window
@click.option(
    "--hashtag",
    "tags",
    multiple=True,
    help="Only events carrying this hashtag (repeatable; normalised like any tag).",
)
@click.option("--limit", type=click.IntRange(1), help="Stop after N events.")
@click.option(
    "--resume",
    is_flag=True,
    help="Continue an interrupted replay of the same files and options after its last "
    "acknowledged event.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Read, convert, filter and judge the events; print a summary; send nothing.",
)
def replay(
    files: Sequence[str],
    broker_addr: str | None,
    speed: float | None,
    envelope: int,
    partitions: int,
    fmt: str,
    mapping: str | None,
    strict: bool,
    sort: bool,
    reorder_buffer: int,
    since: float | None,
    until: float | None,
    tags: tuple[str, ...],
    limit: int | None,
    resume: bool,
    dry_run: bool,
) -> None:
    """Send event FILES to topic 'posts', paced in event time ('-' reads standard input).

    Files may be plain or compressed (gzip, bzip2, xz, zstd: recognised by content).

    Native JSONL lines are sent as they are (the worker judges them); twarc2 (Twitter API v2),
    Twitter v1.1, Mastodon, Bluesky Jetstream and CSV/TSV files are converted to events first.
    """
    import logging

    from pipeline.checkpoint import Checkpoint, options_of
    from pipeline.formats.convert import ConvertError
    from pipeline.formats.tabular import parse_mapping
    from pipeline.hashtags import distinct
    from pipeline.progress import Reporter
    from pipeline.replay import ReplayInterrupted, Selection
    from pipeline.replay import replay as run_replay

    try:
        columns = tuple(parse_mapping(mapping).items())
    except ConvertError as exc:
        fail(str(exc))
    selection = Selection(
        mapping=columns,
        fmt=fmt,
        strict=strict,
        sort=sort,
        buffer=reorder_buffer,
        since=since,
        until=until,
        hashtags=frozenset(distinct(tags)),
        limit=limit,
    )
    if dry_run:
        from pipeline.analyze import analyze as run_analysis
        from pipeline.dryrun import report

        try:
            result = run_analysis(files, selection)
        except USER_ERRORS as exc:
            fail(str(exc))
        for line in report(result):
            click.echo(line)
        return
    # aiokafka logs every failed connection attempt; the one-line error below says it all.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        bootstrap = parse_broker(broker_addr)
        security.from_environment()  # a bad KAFKA_* setting is one line, before anything starts
        checkpoint = None
        if resume or "-" not in files:
            checkpoint = Checkpoint.for_replay(files, options_of(selection))
        with Reporter("replay") as reporter:
            stats = asyncio.run(
                run_replay(
                    files,
                    bootstrap,
                    speed=speed,
                    envelope=envelope,
                    partitions=partitions,
                    on_progress=reporter.update,
                    selection=selection,
                    checkpoint=checkpoint,
                    resume=resume,
                    interruptible=True,
                )
            )
    except USER_ERRORS as exc:
        fail(str(exc))
    except ReplayInterrupted as stopped:
        fail(
            f"interrupted after {stopped.acked:,} acknowledged events: the same command with "
            "--resume continues from there",
            130,
        )
    except KeyboardInterrupt:
        fail("interrupted: events already acknowledged stay in 'posts'", 130)
    if stats.resumed_from:
        click.echo(f"resumed after {stats.resumed_from:,} events sent before", err=True)
    click.echo(
        f"replayed {stats.events:,} events in {stats.records:,} records "
        f"in {stats.elapsed:.1f} s ({stats.rate:,.0f} events/s)",
        err=True,
    )
    if stats.filtered:
        click.echo(f"left out {stats.filtered:,} events by --from/--to/--hashtag", err=True)
    if stats.out_of_order:
        click.echo(
            f"warning: {stats.out_of_order:,} events were older than events already sent, past "
            f"the reorder buffer ({reorder_buffer:,}); they were sent as they came (totals are "
            "exact either way). --sort orders whole files.",
            err=True,
        )
    if stats.skipped:
        click.echo(f"skipped {stats.skipped:,} source lines that hold no event:", err=True)
        for problem in stats.problems[:5]:
            click.echo(f"  {problem}", err=True)
        if stats.skipped > 5:
            click.echo(
                f"  ... and {stats.skipped - 5:,} more (--strict stops at the first)", err=True
            )


@cli.command()
@click.option(
    "--scenario",
    "scenario_name",
    default="metoo-2017",
    show_default=True,
    metavar="NAME|FILE.toml",
    help="A built-in scenario (--list) or a scenario file (README, Simulator).",
)
@click.option(
    "--scale",
    type=click.FloatRange(0, 100, min_open=True),
    default=0.01,
    show_default=True,
    help="Multiplies every count (seed rates, audiences, user pools), not the time span; "
    "1 = the calibrated figures (metoo-2017: ~20 million events).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option(
    "--speed",
    type=Speed(),
    default="max",
    show_default=True,
    help="Event seconds per wall second when sending (3600 = an hour a second), or max.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write JSON lines to this file (gzip if it ends in .gz, - for stdout) instead of "
    "sending to 'posts'.",
)
@broker_option
@envelope_option
@posts_partitions_option
@click.option("--list", "list_only", is_flag=True, help="List the built-in scenarios and exit.")
@click.pass_context
def simulate(
    ctx: click.Context,
    scenario_name: str,
    scale: float,
    seed: int,
    speed: float | None,
    out: str | None,
    broker_addr: str | None,
    envelope: int,
    partitions: int,
    list_only: bool,
) -> None:
    """Simulate a hashtag's spread (a calibrated Hawkes process) into 'posts' or a file.

    Events come in event-time order, as native JSON lines; the same scenario, scale and seed
    give the same bytes. Sending works as 'spread replay' does: envelopes, record timestamp =
    event time, paced by --speed.
    """
    import logging

    from pipeline.progress import Reporter
    from pipeline.replay import ReplayInterrupted, ReplayStats, send_lines
    from pipeline.simulate import model, output, scenario

    if list_only:
        for name, path in scenario.builtins().items():
            click.echo(f"{name:<18} {scenario.describe(path)}")
        return
    explicit_speed = ctx.get_parameter_source("speed") == click.core.ParameterSource.COMMANDLINE
    if out is not None and explicit_speed and speed is not None:
        fail("--speed paces sending to the broker; files are written at full speed")
    stats = ReplayStats()
    try:
        resolved = model.plan(scenario.load(scenario_name), scale)
        items = output.tracked(model.events(resolved, seed), stats, resolved.scenario)
        if out is not None:
            with Reporter("simulate") as reporter:
                output.write_jsonl(items, out, stats, reporter.update)
        else:
            logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
            bootstrap = parse_broker(broker_addr)
            security.from_environment()
            with Reporter("simulate") as reporter:
                asyncio.run(
                    send_lines(
                        items,
                        bootstrap,
                        stats,
                        speed=speed,
                        envelope=envelope,
                        partitions=partitions,
                        on_progress=reporter.update,
                        interruptible=True,
                    )
                )
    except USER_ERRORS as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    except ReplayInterrupted as stopped:
        fail(f"interrupted after {stopped.acked:,} acknowledged events", 130)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    where = "written to " + ("standard output" if out == "-" else str(out)) if out else "sent"
    click.echo(
        f"{resolved.scenario.name} at scale {scale:g}, seed {seed}: {stats.events:,} events "
        f"{where} in {stats.elapsed:.1f} s ({stats.rate:,.0f} events/s)",
        err=True,
    )


@cli.command()
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, exists=True))
@click.option(
    "--scenario",
    "scenario_name",
    default="metoo-2017",
    show_default=True,
    help="Simulated when no FILES are given: a built-in scenario or a scenario .toml file.",
)
@click.option(
    "--scale",
    type=click.FloatRange(0, min_open=True),
    default=0.01,
    show_default=True,
    help="Multiplies every count of the scenario (0.01: about 200,000 events).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option(
    "--speed",
    type=Speed(),
    default="1440",
    show_default=True,
    help="Event seconds per wall second: 1440 plays October 2017's 72 h in 3 minutes.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=8000,
    show_default=True,
    help="Preferred /metrics port (a free one is used if it is busy).",
)
@click.option(
    "--broker-port",
    type=click.IntRange(1, 65535),
    default=9092,
    show_default=True,
    help="Preferred broker port (a free one is used if it is busy).",
)
def demo(
    files: Sequence[str],
    scenario_name: str,
    scale: float,
    seed: int,
    speed: float | None,
    metrics_port: int,
    broker_port: int,
) -> None:
    """Broker + worker + October 2017 unfolding (the metoo-2017 scenario), or a paced replay
    of FILES. Ctrl-C stops everything."""
    from pipeline.demo import Source, run_demo
    from pipeline.simulate import scenario

    if not files:
        try:
            scenario.load(scenario_name)  # a bad scenario fails here, before anything starts
        except USER_ERRORS as exc:
            fail(str(exc))
    source = Source(tuple(files), scenario_name, scale, seed)
    sys.exit(run_demo(source, speed, metrics_port, broker_port))


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True)
@click.option("--hashtag", "tags", multiple=True, help="Only these hashtags (repeatable).")
@click.option(
    "--top", type=click.IntRange(1), default=20, show_default=True, help="Hashtags in the table."
)
@click.option("--json", "as_json", is_flag=True, help="Everything as JSON on stdout.")
@generation_interval_option
@event_time_window
def analyze(
    files: Sequence[str],
    fmt: str,
    tags: tuple[str, ...],
    top: int,
    as_json: bool,
    interval_spec: str,
    since: float | None,
    until: float | None,
) -> None:
    """What the worker's /metrics would show after replaying FILES, computed offline."""
    import orjson

    from pipeline.analyze import analyze as run_analysis
    from pipeline.hashtags import distinct
    from pipeline.replay import Selection
    from pipeline.virality.parents import configured_weights

    wanted = distinct(tags)
    try:
        interval = configured_weights(interval_spec) or ()
        result = run_analysis(
            files, Selection(fmt=fmt, since=since, until=until), interval=interval
        )
    except USER_ERRORS as exc:
        fail(str(exc))
    chosen = wanted or [t for t, _ in result.posts.most_common(None if as_json else top)]
    if as_json:
        click.echo(orjson.dumps(result.to_json(chosen), option=orjson.OPT_INDENT_2).decode())
        return
    rejected = sum(result.rejected.values())
    click.echo(
        f"events {result.accepted + rejected:,} (accepted {result.accepted:,}, "
        f"rejected {rejected:,}); {len(result.posts):,} hashtags"
    )
    click.echo(
        f"{'hashtag':<24} {'posts':>10} {'regions':>8} {'/min 1m':>9} {'15m':>9} {'1h':>9} "
        f"{'R_t':>6} {'trend':>8}"
    )
    for tag in chosen:
        sig = result.signals(tag)
        r = sig["posts_per_minute"]
        rt = sig["reproduction_number"]
        click.echo(
            f"{tag:<24} {result.posts[tag]:>10,} {len(result.regions[tag]):>8} "
            f"{r.get('1m', 0):>9.2f} {r.get('15m', 0):>9.2f} {r.get('1h', 0):>9.2f} "
            + (f"{rt['mean']:>6.2f}" if rt else f"{'-':>6}")
            + f" {sig['trend_score'] or 0:>8.1f}"
        )


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--hashtag", "tag", required=True, help="The hashtag to report on (any spelling).")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, writable=True),
    help="report.png (the charts) or report.html (charts + a table of the final values).",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True)
@generation_interval_option
@event_time_window
def report(
    files: Sequence[str],
    tag: str,
    out: str,
    fmt: str,
    interval_spec: str,
    since: float | None,
    until: float | None,
) -> None:
    """Charts of one hashtag's spread in FILES: rate, cumulative posts by region, R_t with its
    band, and the first post in each region."""
    from pipeline.analyze import analyze as run_analysis
    from pipeline.hashtags import normalise
    from pipeline.replay import Selection
    from pipeline.report import build, render
    from pipeline.virality.parents import configured_weights

    wanted = normalise(tag)
    if not wanted:
        fail(f"--hashtag {tag!r}: empty once normalised")
    try:
        interval = configured_weights(interval_spec) or ()
        result = run_analysis(
            files,
            Selection(fmt=fmt, since=since, until=until),
            interval=interval,
            detail=wanted,
        )
        render(build(result, wanted), out)
    except USER_ERRORS as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    click.echo(f"report on #{wanted} written to {out}", err=True)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Directory for the TSDB blocks (and the OpenMetrics file they came from).",
)
@click.option(
    "--step",
    type=click.IntRange(1),
    default=60,
    show_default=True,
    help="Seconds between samples, in event time.",
)
@click.option(
    "--max-hashtags",
    type=click.IntRange(0),
    default=DEFAULT_MAX_HASHTAGS,
    show_default=True,
    help="Hashtags with series: the top N by posts (0: all).",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True)
@event_time_window
def backfill(
    files: Sequence[str],
    out_dir: str,
    step: int,
    max_hashtags: int,
    fmt: str,
    since: float | None,
    until: float | None,
) -> None:
    """Write FILES' history as Prometheus TSDB blocks, at the events' true dates.

    Needs promtool (Debian's prometheus package, or Prometheus' release tarball). Copy the
    blocks into Prometheus' data directory; its retention must reach back to the events'
    dates (--storage.tsdb.retention.time), or it deletes them at once.
    """
    import shutil
    import subprocess
    from pathlib import Path

    from pipeline.backfill import collect, openmetrics
    from pipeline.replay import ReplayStats, Selection, selected
    from pipeline.virality.movements import DEFAULT as MOVEMENTS

    promtool = shutil.which("promtool")
    if promtool is None:
        fail("promtool not found: install Debian's prometheus package (or put promtool on PATH)")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        selection = Selection(fmt=fmt, since=since, until=until)
        history = collect(selected(files, ReplayStats(), selection), step)
        source = out / "backfill.om"
        with open(source, "w") as f:
            for line in openmetrics(history, max_hashtags, MOVEMENTS["metoo"]):
                f.write(line + "\n")
    except USER_ERRORS as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    result = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(out)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["failed"]
        fail(f"promtool: {last[0]}")
    click.echo(f"blocks written to {out} (from {source}); copy them into Prometheus' data dir")


@cli.command()
@click.argument("urls", nargs=-1)
@click.option(
    "--metrics",
    "metrics_urls",
    multiple=True,
    metavar="URL",
    help="A worker's /metrics (repeatable; same as the URL arguments).",
)
@click.option(
    "--window",
    type=click.Choice(["1m", "15m", "1h"]),
    default="15m",
    show_default=True,
    help="Rate window shown (and ranked by, with --by rate).",
)
@click.option(
    "--by",
    type=click.Choice(RANKINGS),
    default="trend",
    show_default=True,
    help="Ranking: trend score (as the exporter's cap), rate in --window, or total posts.",
)
@click.option("--region", metavar="CC", help="Only hashtags posted in this region, by posts there.")
@click.option("--n", "--limit", "limit", type=click.IntRange(1), default=20, show_default=True)
@click.option(
    "--watch",
    type=click.FloatRange(0.5),
    help="Refresh every N seconds until Ctrl-C (default on a terminal: 2; elsewhere: once).",
)
@click.option("--once", is_flag=True, help="Print once, even on a terminal.")
def top(
    urls: Sequence[str],
    metrics_urls: Sequence[str],
    window: str,
    by: str,
    region: str | None,
    limit: int,
    watch: float | None,
    once: bool,
) -> None:
    """Trending hashtags merged from every worker's /metrics (default: http://127.0.0.1:8000):
    a live table on a terminal, plain text otherwise."""
    from pipeline.regions import normalise as normalise_region
    from pipeline.top import lines, merge, ranked, scrape, table

    if region is not None:
        code = normalise_region(region)
        if code == "ZZ" and region.strip().upper() != "ZZ":
            fail(f"--region {region!r}: not an ISO 3166-1 alpha-2 code")
        region = code
    targets = [u if "/metrics" in u else u.rstrip("/") + "/metrics" for u in (*urls, *metrics_urls)]
    targets = [u if "://" in u else "http://" + u for u in targets] or [
        "http://127.0.0.1:8000/metrics"
    ]
    live = sys.stdout.isatty() and not once
    interval = watch if watch is not None else (2.0 if live else None)

    def rows():  # type: ignore[no-untyped-def]
        try:
            return ranked(merge(scrape(u) for u in targets), window, limit, by, region)
        except USER_ERRORS as exc:
            fail(str(exc))

    if live and interval is not None:
        from rich.live import Live

        title = f"trending by {by} across {len(targets)} worker(s); Ctrl-C stops"
        try:
            with Live(table(rows(), window, region, title), auto_refresh=False) as view:
                while True:
                    time.sleep(interval)
                    view.update(table(rows(), window, region, title), refresh=True)
        except KeyboardInterrupt:
            return
    while True:
        for line in lines(rows(), window, region):
            click.echo(line)
        if interval is None:
            return
        try:
            time.sleep(interval)
        except KeyboardInterrupt:
            return


def main(argv: Sequence[str] | None = None) -> None:
    run(cli, argv)


def run(group: click.Group, argv: Sequence[str] | None = None) -> None:
    """Run a click group with one-line errors instead of usage dumps and tracebacks."""
    try:
        group.main(
            args=list(argv) if argv is not None else None, prog_name="spread", standalone_mode=False
        )
    except click.exceptions.Abort:
        fail("aborted", 130)
    except click.UsageError as exc:
        fail(exc.format_message().replace("\n", " "))
    except click.ClickException as exc:
        fail(exc.format_message().replace("\n", " "), exc.exit_code)
    except USER_ERRORS as exc:
        fail(str(exc))

"""Entry point of ``spread``: the pipeline's commands plus ``spread worker``."""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from pipeline import security
from pipeline.broker import port_is_free
from pipeline.cli import (
    USER_ERRORS,
    broker_option,
    cli,
    fail,
    generation_interval_option,
    run,
)
from pipeline.hashtags import normalise
from pipeline.limits import DEFAULT_LIMITS, Limits
from pipeline.producer import ensure_topics
from pipeline.settings import (
    DEFAULT_APP_ID,
    DEFAULT_GRACE_SECONDS,
    DEFAULT_MAX_HASHTAGS,
    DEFAULT_METRICS_PORT,
    DEFAULT_PARTITIONS,
    GC_THRESHOLDS,
    POSTS,
    REJECTED,
    WorkerSettings,
    deltas_topic,
    parse_broker,
)
from pipeline.virality import movements
from pipeline.virality.parents import configured_weights

# --ingest-process auto: capped, as each helper holds ~100 MB and helpers share a worker's
# posts partitions (8 by default); measured on 2 CPUs only.
AUTO_HELPERS_MAX = 4


@cli.command()
@broker_option
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=DEFAULT_METRICS_PORT,
    show_default=True,
    help="Port of the Prometheus /metrics endpoint.",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    help="Address /metrics listens on (0.0.0.0 in containers).",
)
@click.option(
    "--partitions",
    type=click.IntRange(1, 1024),
    default=DEFAULT_PARTITIONS,
    show_default=True,
    help="Partitions of the topics it creates.",
)
@click.option(
    "--app-id",
    default=DEFAULT_APP_ID,
    show_default=True,
    help="Consumer group and prefix of the changelog topics.",
)
@click.option(
    "--data-dir",
    default=".spread-data",
    show_default=True,
    help="Faust's working directory (state itself lives in changelog topics).",
)
@click.option(
    "--loglevel",
    default="warning",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
@click.option(
    "--max-hashtags",
    "max_exported",
    type=click.IntRange(0),
    default=DEFAULT_MAX_HASHTAGS,
    show_default=True,
    help="Hashtags with series in /metrics: the top N by trend score (0: every hashtag).",
)
@click.option(
    "--always-export",
    default="",
    help="Comma-separated hashtags exported whatever their rank (normalised like any tag); "
    "every movement's tags are too.",
)
@click.option(
    "--movement",
    "movement_specs",
    multiple=True,
    metavar="NAME=TAG,TAG,...",
    help="A family of hashtags counted as one movement (movement_* metrics); repeatable. "
    "Default: metoo=" + ",".join(movements.DEFAULT["metoo"]) + ".",
)
@click.option(
    "--max-event-bytes",
    type=click.IntRange(256, 16 << 20),
    default=DEFAULT_LIMITS.max_event_bytes,
    show_default=True,
    help="Longer event lines are rejected (too_large) without being decoded.",
)
@click.option(
    "--max-tags-per-post",
    "max_hashtags",
    type=click.IntRange(1, 100_000),
    default=DEFAULT_LIMITS.max_hashtags,
    show_default=True,
    help="Posts with more hashtags are rejected (too_many_hashtags).",
)
@click.option(
    "--max-hashtag-chars",
    type=click.IntRange(1, 100_000),
    default=DEFAULT_LIMITS.max_hashtag_chars,
    show_default=True,
    help="Posts with a longer normalised hashtag are rejected (hashtag_too_long).",
)
@click.option(
    "--max-future-seconds",
    type=click.FloatRange(0),
    default=DEFAULT_LIMITS.max_future_seconds,
    show_default=True,
    help="Events dated later than the worker's clock plus this are rejected (ts_out_of_range).",
)
@generation_interval_option
@click.option(
    "--grace-seconds",
    type=click.FloatRange(0),
    default=DEFAULT_GRACE_SECONDS,
    show_default=True,
    help="Events older than their partition's newest event time minus this are late: counted "
    "in totals and spread_events_late_total, not in the windows (rates, R_t, trend).",
)
@click.option(
    "--virality/--no-virality",
    default=True,
    show_default=True,
    help="--no-virality: counts, rates and growth only (no movements, trend, R_t, unique "
    "users), for the most events per second; the cap then ranks by the 15m rate.",
)
@click.option(
    "--ingest-process",
    "ingest_processes",
    metavar="auto|on|off|N",
    default="auto",
    show_default=True,
    callback=lambda _ctx, _param, value: helper_count(value, usable_cpus()),
    help="Decode, validate and pre-aggregate posts in N helper processes beside the worker's "
    "event loop, each with a share of its posts partitions; the loop then has its core for the "
    "counters and the writes. on: 1; off: none; auto: one per CPU the worker may use, up to "
    f"{AUTO_HELPERS_MAX}, when it may use 2 or more.",
)
@click.option(
    "--record-delivery",
    type=click.Choice(["fetch", "faust"]),
    default="fetch",
    hidden=True,  # for bench/throughput.py: Faust's own per-record path, to compare
    help="fetch: both stages take their records a fetch at a time (agents/batches.py); "
    "faust: one by one, as Faust delivers them.",
)
def worker(
    broker_addr: str | None,
    metrics_port: int,
    metrics_host: str,
    partitions: int,
    app_id: str,
    data_dir: str,
    loglevel: str,
    max_event_bytes: int,
    max_hashtags: int,
    max_hashtag_chars: int,
    max_future_seconds: float,
    max_exported: int,
    always_export: str,
    movement_specs: tuple[str, ...],
    interval_spec: str,
    grace_seconds: float,
    virality: bool,
    ingest_processes: int,
    record_delivery: str,
) -> None:
    """Run a Faust worker: ingest 'posts', keep hashtag counters, serve /metrics."""
    import faust

    from agents import batches
    from agents.app import Topology, create_app

    # Until the broker answered, a failure is one line below, not aiokafka's log noise.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        bootstrap = parse_broker(broker_addr)
        security.from_environment()  # a bad KAFKA_* setting is one line, before anything starts
        if not port_is_free(metrics_host, metrics_port):
            fail(
                f"metrics port {metrics_host}:{metrics_port} is busy: pick another with "
                "--metrics-port"
            )
        families = movements.parse(movement_specs) if movement_specs else movements.DEFAULT
        interval = configured_weights(interval_spec)
        wanted = {POSTS: partitions, REJECTED: partitions, deltas_topic(app_id): partitions}
        actual = asyncio.run(ensure_topics(bootstrap, wanted))
    except USER_ERRORS as exc:
        fail(str(exc))
    if actual[POSTS] != partitions:
        click.echo(
            f"spread: note: topic 'posts' exists with {actual[POSTS]} partitions; using that",
            err=True,
        )
    settings = WorkerSettings(
        broker=bootstrap,
        app_id=app_id,
        partitions=partitions,
        metrics_host=metrics_host,
        metrics_port=metrics_port,
        data_dir=data_dir,
        limits=Limits(max_event_bytes, max_hashtags, max_hashtag_chars, max_future_seconds),
        max_hashtags=max_exported,
        always_export=tuple(
            dict.fromkeys(t for t in map(normalise, always_export.split(",")) if t)
        ),
        movements=tuple(families.items()) if virality else (),  # movements are a signal
        generation_interval=interval or (),
        grace_seconds=grace_seconds,
        virality=virality,
        ingest_processes=ingest_processes,
    )
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    app = create_app(settings, Topology(posts=actual[POSTS], deltas=actual[deltas_topic(app_id)]))
    if record_delivery == "fetch":
        batches.install(app, [app.spread_ingest.batches, app.spread_counters.batches])
    click.echo(
        f"worker {app_id}: broker {bootstrap}, metrics on "
        f"http://{metrics_host}:{metrics_port}/metrics",
        err=True,
    )
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    # The tables hold millions of long-lived objects, and every full (generation 2) garbage
    # collection walks all of them: with CPython's default thresholds that was a third of
    # the worker's time in `make bench` (42k -> 87k events/s without it). Young generations
    # are still collected as usual; full collections become rare, not disabled. Table
    # values are plain acyclic data, freed by reference counting anyway.
    gc.set_threshold(*GC_THRESHOLDS)
    # The changelog writer is a service of its own; a write cut short by shutdown leaves its
    # batch unacknowledged, so it is redelivered and skipped or applied on the next start.
    worker = faust.Worker(app, app.spread_writer, loglevel=loglevel.upper(), quiet=True)
    # Faust's progress spinner sets the root logger to DEBUG so that it turns on every log
    # record (faust-streaming 0.15.3, Worker._setup_spinner_handler): every debug line was
    # then formatted and handled, two per changelog record in a recovery. Its output is of no
    # use to a service anyway.
    worker.spinner = None
    try:
        worker.execute_from_commandline()
    except SystemExit as stopped:  # mode ends every run so, once the worker has stopped
        code = stopped.code
    finally:
        app.spread_ingest.close()
    # The interpreter's exit would free the tables' tens of millions of objects one by one:
    # seconds of a stop's grace period (4 s with a million hashtags) for nothing. What must
    # outlive the process was written and flushed by the stop.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0 if code is None else code if isinstance(code, int) else 1)


def helper_count(spec: str, cpus: int) -> int:
    """``--ingest-process``'s helper processes, for a worker that may use ``cpus`` CPUs."""
    if spec == "auto":
        return min(cpus, AUTO_HELPERS_MAX) if cpus >= 2 else 0
    named = {"on": 1, "off": 0}
    if spec in named:
        return named[spec]
    if spec.isdigit() and int(spec) <= 64:
        return int(spec)
    raise click.BadParameter(f"{spec!r}: expected auto, on, off or a number of processes (0-64)")


def usable_cpus(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """The CPUs this process may run on: its affinity where the OS has one (Linux), else
    the machine's count (macOS), and no more than its cgroup's CPU quota (a container's
    ``--cpus``, a Kubernetes CPU limit), rounded down."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    quota = cpu_quota(cgroup)
    return cpus if quota is None else max(1, min(cpus, math.floor(quota)))


def cpu_quota(cgroup: Path) -> float | None:
    """The cgroup's CPU quota in CPUs (cgroup v2's ``cpu.max``, or v1's CFS quota), None
    without one."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def main(argv: Sequence[str] | None = None) -> None:
    run(cli, argv)

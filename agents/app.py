"""The Faust app: settings, topics and the wiring of both stages and the exporter.

Settings that differ from Faust's defaults, and why:

``broker_session_timeout=4``, ``broker_heartbeat_interval=1``
    The embedded broker holds a new group's JoinGroup for half the session timeout; Faust's
    default (60 s) makes a worker wait ~30 s to join. 4 s joins in about 2 s.
``consumer.highwaters`` corrected (:func:`install_true_highwaters`)
    The embedded broker reports the high watermark as the base offset of the last batch + 1;
    Faust's changelog recovery reads up to the high watermark, so it would restore tables
    without their newest writes. The worker asks :func:`pipeline.offsets.true_end_offsets`.
``consumer_auto_offset_reset="earliest"``
    A worker started after a replay still counts every event already in ``posts``.
``store="memory://"``
    State is rebuilt from the changelog topics at start; nothing to manage on disk. The
    counters' two tables restore in bulk first (:mod:`agents.store`), hence
    ``recovery_consistency_check=False`` (see where it is set).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import faust
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.process_collector import ProcessCollector

from agents.changelog import ChangelogWriter
from agents.collector import HashtagCollector, PipelineCollector
from agents.counters import HOLD_SECONDS, Counters
from agents.health import BrokerProbe
from agents.ingest import Ingest
from pipeline import security
from pipeline.offsets import true_end_offsets
from pipeline.settings import POSTS, REJECTED, WorkerSettings, deltas_topic
from pipeline.virality import movements


@dataclass(frozen=True, slots=True)
class Topology:
    """Partition counts as they exist on the broker (see ``producer.ensure_topics``)."""

    posts: int
    deltas: int


def create_app(settings: WorkerSettings, topology: Topology) -> faust.App:
    app = faust.App(
        settings.app_id,
        broker_credentials=faust_credentials(security.from_environment()),
        broker=[f"kafka://{server}" for server in settings.broker.split(",")],
        store="memory://",
        autodiscover=False,
        datadir=settings.data_dir,
        topic_partitions=topology.deltas,
        topic_replication_factor=1,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        # No standby replicas: Faust's default (1) makes every worker also replay the other
        # workers' changelogs, record by record, all the time; with two workers on 2 cores
        # that made two slower than one (bench/scaleout.py). A worker that takes over a
        # partition restores it from the changelog instead (bench/recovery.py measures that).
        table_standby_replicas=0,
        # The check guards RocksDB files left over from a deleted topic. The counters' store
        # (agents/store.py) is in memory and reports as persisted only offsets it has just
        # read from the changelog, so "persisted above the high watermark" can only mean the
        # high watermark is the one that is short; recovery then has nothing left to read.
        recovery_consistency_check=False,
        broker_session_timeout=4,
        broker_heartbeat_interval=1,
        web_enabled=True,
        web_bind=settings.metrics_host,
        web_host=settings.metrics_host,
        web_port=settings.metrics_port,
        web_in_thread=False,
        # The web server is the metrics endpoint: no table listings or partition routing
        # for anyone who can reach the port.
        web_router_enabled=False,
        web_tables_enabled=False,
    )
    posts = app.topic(POSTS, key_serializer="raw", value_serializer="raw")
    rejected = app.topic(REJECTED, key_serializer="raw", value_serializer="raw")
    deltas = app.topic(
        deltas_topic(settings.app_id),
        key_serializer="raw",
        value_serializer="raw",
        internal=True,
        partitions=topology.deltas,
    )

    writer = ChangelogWriter(settings.broker)
    partition_cache: dict[str, int] = {}  # tag -> hashtag-deltas partition, for both stages
    counters = Counters(
        app, deltas, topology.deltas, writer, partition_cache, settings.grace_seconds
    )
    ingest = Ingest(
        app,
        posts,
        rejected,
        deltas,
        topology,
        writer,
        settings.limits,
        partition_cache,
        movements.index(dict(settings.movements)),
        settings.grace_seconds,
        settings.virality,
        settings.ingest_processes,
    )

    counters.batches.hold = functools.partial(ingest.between_batches, HOLD_SECONDS)

    probe = BrokerProbe(app, settings.broker)

    registry = CollectorRegistry(auto_describe=True)
    registry.register(PipelineCollector(app, ingest, counters, probe, settings.generation_interval))
    registry.register(
        HashtagCollector(
            app,
            ingest,
            counters,
            settings.max_hashtags,
            settings.always_export + tuple(t for _, tags in settings.movements for t in tags),
            settings.generation_interval,
            settings.movements,
            settings.virality,
        )
    )
    ProcessCollector(registry=registry)

    @app.page("/metrics")
    async def metrics(web, request):
        # ``?name[]=spread_events_total`` (Prometheus' own convention) serves only those
        # families, so tools can poll progress without walking every hashtag.
        names = request.query.getall("name[]", [])
        source = registry.restricted_registry(names) if names else registry
        return web.bytes(generate_latest(source), headers={"Content-Type": CONTENT_TYPE_LATEST})

    install_true_highwaters(app, settings.broker)
    install_reliable_seek_to_committed(app)
    install_short_fetch_wait(app)

    # For tests and tools that inspect a running app.
    app.spread_registry = registry  # type: ignore[attr-defined]
    app.spread_ingest = ingest  # type: ignore[attr-defined]
    app.spread_counters = counters  # type: ignore[attr-defined]
    app.spread_writer = writer  # type: ignore[attr-defined] - the worker starts and stops it
    return app


def faust_credentials(sec: security.KafkaSecurity) -> faust.types.auth.CredentialsT | None:
    """Faust's form of the same settings every aiokafka client of the project uses."""
    if sec.uses_sasl:
        return faust.SASLCredentials(
            username=sec.sasl_username,
            password=sec.sasl_password,
            ssl_context=sec.ssl_context(),
            mechanism=sec.sasl_mechanism,
        )
    if sec.uses_ssl:
        return faust.SSLCredentials(sec.ssl_context())
    return None


def install_true_highwaters(app: faust.App, bootstrap: str) -> None:
    """Make the consumer's ``highwaters`` (used by table recovery) exact on any broker."""
    consumer = app.consumer
    reported = consumer.highwaters

    async def highwaters(*partitions):  # type: ignore[no-untyped-def]
        return await true_end_offsets(bootstrap, await reported(*partitions))

    consumer.highwaters = highwaters  # type: ignore[method-assign]


FETCH_MAX_WAIT_MS = 100


def install_short_fetch_wait(app: faust.App) -> None:
    """Let fetches of an idle partition return after ``FETCH_MAX_WAIT_MS``, not 1.5 s.

    Faust (faust-streaming 0.15.3, aiokafka driver; re-check on upgrade) creates its consumer
    with ``fetch_max_wait_ms=1500`` hard-coded. A broker answers a fetch once it has data or
    that long has passed; when the stream is light (a live feed, the end of a replay) each
    of the two stages can wait that long for the next records, and `make bench`'s latency
    measurement at 10,000 events/s had its p99 above 2 s. Under load fetches return with
    data at once, so throughput is unchanged; idle, the worker sends more (cheap) fetches.
    """
    thread = app.consumer._thread  # type: ignore[attr-defined]
    create = thread._create_worker_consumer

    def create_worker_consumer(transport):  # type: ignore[no-untyped-def]
        consumer = create(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read by AIOKafkaConsumer.start()
        return consumer

    thread._create_worker_consumer = create_worker_consumer


def install_reliable_seek_to_committed(app: faust.App) -> None:
    """Make Faust's "seek back to committed offsets" also rewind partitions that have no
    committed offset yet, so that records it throws away are fetched again.

    Faust (faust-streaming 0.15.3, aiokafka driver; re-check on upgrade) throws away
    records that a fetch returns while the flow is stopped, for example a fetch that started
    before a rebalance and came back after it, during recovery. It then relies on
    ``Consumer.perform_seek`` -> aiokafka ``seek_to_committed()`` to move the position back.
    aiokafka seeks only partitions whose committed offset is > 0 and leaves the others at
    the fetch position, *past* the discarded records. Eager rebalancing also drops the acks
    that were not committed yet, so a worker that joins in the first seconds of a replay
    leaves partitions with no committed offset at all: the worker that keeps them skipped
    the records of that stale fetch for good (in `tests/integration/test_scaling.py`, offsets
    ~4-9 of the four `posts` partitions it kept, ~800 events; both workers then look
    "frozen" at a partial count, with every offset committed).

    Here a partition with a committed offset (0 included) is sought to it, and a stream
    partition without one is reset as ``consumer_auto_offset_reset`` says: where a fresh
    assignment would start. Stage 1 and stage 2 skip what they had applied already. Changelog
    partitions keep Faust's behaviour: recovery positions them itself.

    The flow is also stopped while the seek runs. At the end of a recovery Faust resumes the
    stream partitions, *then* awaits the seek, then clears every stream's queue
    (``flow_control.resume``). Records fetched from the new position during that await were
    queued and then thrown away, with the position already past them; Faust's gap bookkeeping
    then acknowledged them as if they had been processed. A worker that kept a partition
    through a rebalance skipped a ``hashtag-deltas`` record that way (seen under CPU load in
    the join-mid-replay test: offsets ... 21, 23 ...). With the flow stopped, a fetch that
    returns meanwhile is discarded and sought back again, and Faust resumes the flow itself
    once the queues are cleared.
    """
    consumer = app.consumer
    thread = consumer._thread  # type: ignore[attr-defined]
    perform_seek = consumer.perform_seek

    async def perform_seek_with_flow_stopped() -> None:
        # Both callers resume the flow afterwards (recovery) or had it stopped (a fetch that
        # came back while it was): nothing to restore here.
        consumer.stop_flow()
        await perform_seek()

    consumer.perform_seek = perform_seek_with_flow_stopped  # type: ignore[method-assign]

    async def _seek(consumer):  # type: ignore[no-untyped-def]  # runs in the consumer thread
        changelogs = app.tables.changelog_topics
        committed = {tp: await consumer.committed(tp) for tp in consumer.assignment()}
        assigned = consumer.assignment()
        unset = []
        for tp, offset in committed.items():
            if tp not in assigned:  # revoked meanwhile; a new assignment resets it anyway
                continue
            if offset is not None and offset >= 0:
                consumer.seek(tp, offset)
            elif tp.topic not in changelogs:
                unset.append(tp)
        if unset:
            if app.conf.consumer_auto_offset_reset == "latest":
                await consumer.seek_to_end(*unset)
            else:
                await consumer.seek_to_beginning(*unset)
        return committed

    async def seek_to_committed():  # type: ignore[no-untyped-def]
        return await thread.call_thread(_seek, thread._ensure_consumer())

    thread.seek_to_committed = seek_to_committed

"""``make bench``: one worker end to end against the bare aiokafka ceiling and the naive design.

All three read the same kind of records from the same embedded broker in one run:

- ceiling: a bare aiokafka consumer that reads the envelopes, decodes every line with orjson
  and counts hashtags in a dict (no validation, no state, no output);
- ours: ``spread worker`` (both stages, changelog-backed tables), timed from its first counted
  event until ``/metrics`` shows every event read and every hashtag post applied (polled
  cheaply with ``name[]``: the sum of every hashtag's total must equal the workload's), then
  one full scrape, timed on its own, whose exported hashtag totals must all be exact; it
  runs stage 1's decoding and pre-aggregation in its helper processes (the default on a
  machine with 2 cores or more: one per core, up to 4);
- ours in one process (``--ingest-process off``), on the same broker after it: what the
  helper processes give;
- ours without the virality signals (``--no-virality``: no movements, R_t, trend or unique
  users), on the same records replayed to a fresh broker: what those signals cost;
- naive: Record model + ``group_by`` + one windowed-table write per event (DESIGN "Dataflow"),
  on a smaller slice because it is ~100x slower;
- one event per record, as other producers send them, on a broker of their own: ours, then
  the same worker with Faust's per-record delivery (``--record-delivery faust``), which
  the stages' fetch-at-a-time delivery (``agents/batches.py``) replaces.

Ratios come first; absolute figures depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from bench.worker import start_worker
from bench.workload import events
from pipeline.broker import EmbeddedBroker, free_port
from pipeline.producer import ensure_topics
from pipeline.replay import replay
from pipeline.settings import DEFAULT_MAX_HASHTAGS

POLL_SECONDS = 0.5


def scrape(url: str) -> tuple[dict[str, float], dict[str, float], int, float]:
    """Summed samples of the families the benchmark needs, hashtag totals by tag, the body
    size and how long it took."""
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            text = resp.read().decode()
    except OSError:
        return {}, {}, 0, 0.0
    elapsed = time.perf_counter() - t
    out: Counter = Counter()
    by_tag: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name in ("spread_events_total", "spread_hashtag_posts_sum"):
                out[s.name] += s.value
            elif s.name == "hashtag_posts_total":
                by_tag[s.labels["hashtag"]] = s.value
    return dict(out), by_tag, len(text), elapsed


@dataclass
class Ours:
    rate: float
    scrape_bytes: int
    scrape_seconds: float


async def ceiling(bootstrap: str, n: int) -> float:
    consumer = AIOKafkaConsumer(
        "posts",
        bootstrap_servers=bootstrap,
        group_id="bench-ceiling",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 << 20,
    )
    await consumer.start()
    counts: dict[str, int] = {}
    seen = 0
    loads = orjson.loads
    try:
        t0 = None
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            if t0 is None and batch:
                t0 = time.perf_counter()
            for records in batch.values():
                for record in records:
                    for line in record.value.split(b"\n"):
                        seen += 1
                        for tag in loads(line).get("hashtags") or ():
                            counts[tag] = counts.get(tag, 0) + 1
        return seen / (time.perf_counter() - t0)
    finally:
        await consumer.stop()


def ours(
    bootstrap: str,
    n: int,
    expected: Counter,
    workdir: Path,
    extra: tuple[str, ...] = (),
    app_id: str = "bench-ours",
) -> Ours:
    proc, url, log = start_worker(bootstrap, workdir, app_id, app_id, extra)
    try:
        t0 = None
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            # Progress is polled with a restricted scrape: a full one reads the exported tags on
            # the worker's event loop, and polling it would measure the exporter instead.
            m, _, _, _ = scrape(url + "?name[]=spread_events_total&name[]=spread_hashtag_posts_sum")
            if t0 is None and m.get("spread_events_total", 0) > 0:
                t0, first = time.perf_counter(), m["spread_events_total"]
            if (
                m.get("spread_events_total") == n
                and m.get("spread_hashtag_posts_sum") == expected.total()
            ):
                rate = (n - first) / (time.perf_counter() - t0)
                _, by_tag, size, took = scrape(url)  # the exporter, timed on its own
                wrong = {t: v for t, v in by_tag.items() if v != expected[t]}
                if not by_tag or wrong:
                    raise SystemExit(f"wrong totals in /metrics: {wrong or 'none exported'}")
                return Ours(rate, size, took)
            if proc.poll() is not None:
                raise SystemExit(f"worker exited with {proc.returncode}: see {log}")
            time.sleep(POLL_SECONDS)
        raise SystemExit("worker did not finish in 30 minutes")
    finally:
        proc.terminate()
        proc.wait(30)


def naive(bootstrap: str, lines: list[bytes], expected_writes: int, workdir: Path) -> float:
    async def produce() -> None:
        await ensure_topics(bootstrap, {"naive-posts": 8, "naive-tagged": 8})
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
        await producer.start()
        try:
            futures = [await producer.send("naive-posts", line) for line in lines]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(produce())
    port = free_port()
    log = open(workdir / "naive.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.naive_worker", bootstrap, str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/count"
    try:
        t0 = None
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    seen = orjson.loads(resp.read())
            except OSError:
                seen = {"events": 0, "writes": 0}
            if t0 is None and seen["events"] > 0:
                t0, first = time.perf_counter(), seen["events"]
            if seen["writes"] >= expected_writes:
                return (len(lines) - first) / (time.perf_counter() - t0)
            if proc.poll() is not None:
                raise SystemExit(f"naive worker exited: see {workdir}/naive.log")
            time.sleep(0.1)
        raise SystemExit("naive worker did not finish in 15 minutes")
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--naive-events", type=int, default=10_000)
    parser.add_argument("--envelope", type=int, default=1000)
    parser.add_argument("--single-events", type=int, default=200_000)
    args = parser.parse_args()

    lines = list(events(args.events))
    # Independent of the pipeline's code: these workload tags are plain ASCII, so casefold is
    # their whole normalisation.
    tag_posts = Counter(
        t for x in lines for t in {t.casefold() for t in orjson.loads(x)["hashtags"]}
    )
    with tempfile.TemporaryDirectory(prefix="spread-bench-") as tmp:
        workdir = Path(tmp)
        data = workdir / "events.jsonl"
        data.write_bytes(b"\n".join(lines) + b"\n")
        with EmbeddedBroker(port=free_port(), log_path=str(workdir / "broker.log")) as broker:
            b = broker.bootstrap
            t = time.perf_counter()
            stats = asyncio.run(replay([data], b, envelope=args.envelope))
            produce_rate = stats.events / (time.perf_counter() - t)
            ceiling_rate = asyncio.run(ceiling(b, args.events))
            result = ours(b, args.events, tag_posts, workdir)
            ours_rate = result.rate
            one_process = ours(
                b, args.events, tag_posts, workdir, ("--ingest-process", "off"), "bench-one-process"
            ).rate
            slice_ = lines[: args.naive_events]
            writes = sum(len({t.casefold() for t in orjson.loads(x)["hashtags"]}) for x in slice_)
            naive_rate = naive(b, slice_, writes, workdir)
        # The same records on a fresh broker (the same starting point as the first worker),
        # read by a worker with the virality signals off: what movements, R_t, trend and
        # unique users cost.
        with EmbeddedBroker(port=free_port(), log_path=str(workdir / "broker3.log")) as broker:
            asyncio.run(replay([data], broker.bootstrap, envelope=args.envelope))
            counts_only = ours(
                broker.bootstrap,
                args.events,
                tag_posts,
                workdir,
                ("--no-virality",),
                "bench-counts-only",
            )
        # Other producers send one event per record: the same pipeline, Faust's per-record
        # cost (DESIGN "Dataflow"), on a fresh broker so the worker reads only these.
        single = lines[: args.single_events]
        single_data = workdir / "single.jsonl"
        single_data.write_bytes(b"\n".join(single) + b"\n")
        single_posts = Counter(
            t for x in single for t in {t.casefold() for t in orjson.loads(x)["hashtags"]}
        )
        (workdir / "single").mkdir()
        with EmbeddedBroker(port=free_port(), log_path=str(workdir / "broker2.log")) as broker:
            asyncio.run(replay([single_data], broker.bootstrap, envelope=1))
            single_rate = ours(broker.bootstrap, len(single), single_posts, workdir / "single").rate
            # The same records through Faust's own delivery, one record at a time.
            faust_single_rate = ours(
                broker.bootstrap,
                len(single),
                single_posts,
                workdir / "single",
                ("--record-delivery", "faust"),
                "bench-faust-delivery",
            ).rate
    cores = os.cpu_count()
    print(f"ours / bare aiokafka ceiling : {ours_rate / ceiling_rate:.2f}x")
    print(f"ours / naive Faust design    : {ours_rate / naive_rate:.1f}x")
    print(
        f"virality signals cost        : {1 - ours_rate / counts_only.rate:.0%} of throughput "
        f"(--no-virality: {counts_only.rate:,.0f} events/s; scrape "
        f"{counts_only.scrape_seconds:.2f} s vs {result.scrape_seconds:.2f} s)"
    )
    print(f"ours (worker, end to end)    : {ours_rate:>10,.0f} events/s, exact totals")
    print(
        f"ours in one process          : {one_process:>10,.0f} events/s "
        f"(--ingest-process off: the helpers give {ours_rate / one_process:.2f}x)"
    )
    print(f"bare aiokafka ceiling        : {ceiling_rate:>10,.0f} events/s")
    print(
        f"naive Faust design           : {naive_rate:>10,.0f} events/s "
        f"({args.naive_events:,} single-event records)"
    )
    print(
        f"ours, one event per record   : {single_rate:>10,.0f} events/s "
        f"({args.single_events:,} records; with Faust's per-record delivery "
        f"{faust_single_rate:,.0f}: {single_rate / faust_single_rate:.1f}x)"
    )
    print(f"replay producer (--speed max): {produce_rate:>10,.0f} events/s")
    print(
        f"full /metrics scrape         : {result.scrape_bytes / 1e6:>10.1f} MB in "
        f"{result.scrape_seconds:.2f} s (top {DEFAULT_MAX_HASHTAGS} by trend + the movement)"
    )
    print(
        f"{args.events:,} events, envelopes of {args.envelope}, 8 partitions, "
        f"{cores} cores, embedded broker"
    )


if __name__ == "__main__":
    main()

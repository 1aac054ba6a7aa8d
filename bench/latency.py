"""Latency: how long after it is produced an event's effect shows in ``/metrics``.

    python -m bench.latency [--rate 10000] [--seconds 60]

One worker reads ``posts`` on the embedded broker while a producer sends the Zipf workload
(bench.workload) at a steady rate, in envelopes of ``rate / 10`` events ten times a second, with
the send time of each envelope recorded once the broker acknowledged it. A poller reads
``spread_hashtag_posts_sum`` (the hashtag posts applied by stage 2, a cheap ``name[]``
scrape) every 20 ms. An envelope's latency is from its send to the first scrape whose sum
includes every hashtag post sent up to and including it. Reported: p50/p95/p99/max over the
envelopes after a 10 s warm-up (the worker's partition assignment and first fetches).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import orjson
from prometheus_client.parser import text_string_to_metric_families

from bench.worker import start_worker
from bench.workload import events
from pipeline.broker import EmbeddedBroker, free_port
from pipeline.events import ENVELOPE_FORMAT, ENVELOPE_HEADER
from pipeline.producer import ensure_topics, start_producer
from pipeline.settings import POSTS, REJECTED

POLL = "?name[]=spread_hashtag_posts_sum"
WARM_UP = 10.0


def posts_applied(url: str) -> float | None:
    try:
        with urllib.request.urlopen(url + POLL, timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == "spread_hashtag_posts_sum":
                return s.value
    return None


def poll(url: str, stop: threading.Event, seen: list[tuple[float, float]]) -> None:
    while not stop.is_set():
        value = posts_applied(url)
        if value is not None:
            seen.append((time.perf_counter(), value))
        time.sleep(0.02)


async def produce(bootstrap: str, rate: int, seconds: float) -> list[tuple[float, int]]:
    """Send for ``seconds``; return (send time, cumulative hashtag posts) per envelope."""
    per_envelope = max(1, rate // 10)
    lines = list(events(int(rate * seconds) + per_envelope))
    posts = [len({t.casefold() for t in orjson.loads(x)["hashtags"]}) for x in lines]
    producer = await start_producer(bootstrap)
    sent: list[tuple[float, int]] = []
    total = 0
    start = time.perf_counter()
    try:
        for i, first in enumerate(range(0, len(lines) - per_envelope + 1, per_envelope)):
            due = start + i * 0.1
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if time.perf_counter() - start > seconds:
                break
            chunk = lines[first : first + per_envelope]
            t = time.perf_counter()
            await (
                await producer.send(
                    POSTS,
                    b"\n".join(chunk),
                    headers=[(ENVELOPE_HEADER, ENVELOPE_FORMAT)],
                    partition=i % 8,
                )
            )
            total += sum(posts[first : first + per_envelope])
            sent.append((t, total))
    finally:
        await producer.stop()
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=10_000, help="events per second")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="spread-latency-") as tmp:
        workdir = Path(tmp)
        with EmbeddedBroker(port=free_port(), log_path=str(workdir / "broker.log")) as broker:
            b = broker.bootstrap
            asyncio.run(ensure_topics(b, {POSTS: 8, REJECTED: 8}))
            worker, url, log = start_worker(b, workdir, "worker")
            try:
                deadline = time.monotonic() + 60
                while posts_applied(url) is None:
                    if time.monotonic() > deadline or worker.poll() is not None:
                        raise SystemExit(f"the worker did not start: see {log}")
                    time.sleep(0.2)
                stop = threading.Event()
                seen: list[tuple[float, float]] = []
                poller = threading.Thread(target=poll, args=(url, stop, seen), daemon=True)
                poller.start()
                sent = asyncio.run(produce(b, args.rate, args.seconds))
                deadline = time.monotonic() + 120
                while (not seen or seen[-1][1] < sent[-1][1]) and time.monotonic() < deadline:
                    time.sleep(0.1)
                stop.set()
                poller.join()
            finally:
                worker.terminate()
                worker.wait(30)
    times = [t for t, _ in seen]
    values = [v for _, v in seen]
    latencies = []
    t0 = sent[0][0]
    for t, cumulative in sent:
        if t - t0 < WARM_UP:
            continue
        i = bisect.bisect_left(times, t)
        while i < len(values) and values[i] < cumulative:
            i += 1
        if i == len(values):
            raise SystemExit("the worker never showed every event: see the worker log")
        latencies.append(times[i] - t)
    q = statistics.quantiles(latencies, n=100)
    print(
        f"latency, produce -> /metrics: p50 {q[49]:.2f} s, p95 {q[94]:.2f} s, "
        f"p99 {q[98]:.2f} s, max {max(latencies):.2f} s"
    )
    print(
        f"{args.rate:,} events/s for {args.seconds:.0f} s in envelopes of {max(1, args.rate // 10)}"
        f", {len(latencies):,} envelopes after a {WARM_UP:.0f} s warm-up, /metrics polled every "
        "20 ms, 1 worker, 8 partitions, embedded broker"
    )


if __name__ == "__main__":
    main()

"""Soak: sustained load at 80 % of one worker's measured peak, a long tail of a million
hashtags: does memory level off once windows expire, does /metrics stay capped, is the lag
bounded?

    python -m bench.soak [--minutes 10] [--tags 1000000] [--speed 120] [--load 0.8]
                         [--sustained-minutes 6.5]

1. **Peak, fresh**: ``PEAK_EVENTS`` events of the workload below, already in ``posts``,
   counted by a worker of their own (app id ``soak-peak``), timed as bench.throughput does.
   A worker with small tables and the machine to itself: what it does in a short burst.
2. **Peak, sustained**: a fresh worker on a broker of its own; the soak's producer sends the
   soak's workload at the fresh peak, more than the worker can count, for
   ``--sustained-minutes``. What the worker counts per second over the last
   ``SUSTAINED_LAST`` minutes, once minute buckets expire, its tables are large and the
   producer and the broker share the cores with it, is its peak under the soak's own
   conditions: the load is a share of this one.
3. **Soak**: a fresh worker; a producer sends the workload at ``--load`` × the sustained
   peak, one envelope every 0.1 s, for ``--minutes``. Event time runs ``--speed`` times
   faster than the wall clock (120: 20 hours of event time in 10 minutes), so minute buckets
   start to expire once the retention (grace + 7 h of event time) has passed: after about
   3.6 minutes at 120x. Hashtags come from a vocabulary of ``--tags`` with Zipf weights
   (s = 1): most of it shows up, the bulk a few times each.
4. Every 10 s: the worker's RSS, hashtags and buckets held, the lag (events acknowledged by
   the broker minus events the worker counted), a full /metrics scrape's size and time.

Reported: the curve, RSS growth per minute over the middle and the last third, and per new
hashtag over the last third. Once buckets expire their number stays flat; what still grows is
the totals of hashtags seen for the first time (counters, kept for good), so RSS follows the
distinct hashtags, not the events.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import itertools
import random
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson

from bench.exporter import Worker, rss_bytes
from bench.recovery import progress
from bench.throughput import scrape
from bench.workload import REGIONS, START
from pipeline.broker import EmbeddedBroker, free_port
from pipeline.events import ENVELOPE_FORMAT, ENVELOPE_HEADER
from pipeline.producer import ensure_topics, start_producer
from pipeline.replay import replay
from pipeline.settings import POSTS, REJECTED

PEAK_EVENTS = 300_000
# Sending at the fresh peak this long, measured over the last SUSTAINED_LAST minutes: past
# the first expiry (3.6 minutes at 120x), so that it includes the tombstones and large tables.
SUSTAINED_MINUTES = 6.5
SUSTAINED_LAST = 2.0
SAMPLE_EVERY = 10.0
POLL = (
    "?name[]=spread_events_total&name[]=spread_hashtags_tracked&name[]=spread_minute_buckets"
    "&name[]=spread_minute_buckets_expired_total"
)


class LongTail:
    """Events whose hashtags come from ``tags`` names with Zipf weights; event time advances
    ``speed`` seconds per wall second at ``rate`` events per wall second."""

    def __init__(self, tags: int, rate: float, speed: float, seed: int = 11) -> None:
        self.rng = random.Random(seed)
        self.names = ["MeToo", *(f"tail{i}" for i in range(1, tags))]
        self.cum = list(itertools.accumulate(1 / (i + 1) for i in range(tags)))
        self.step = speed / rate
        self.i = 0

    def line(self) -> bytes:
        rng, i = self.rng, self.i
        self.i += 1
        k = 1 + (rng.random() < 0.3) + (rng.random() < 0.1)
        top = self.cum[-1]
        tags = [self.names[bisect.bisect(self.cum, rng.random() * top)] for _ in range(k)]
        return orjson.dumps(
            {
                "id": f"s-{i}",
                "ts": START + i * self.step,
                "user": f"u-{rng.randrange(200_000)}",
                "region": REGIONS[rng.randrange(len(REGIONS))],
                "hashtags": tags,
            }
        )


async def produce(bootstrap: str, source: LongTail, rate: float, seconds: float, acked) -> None:
    """One envelope every 0.1 s; ``acked`` counts the events the broker acknowledged."""
    per_envelope = max(1, round(rate / 10))
    producer = await start_producer(bootstrap)
    start = time.perf_counter()
    try:
        for n in itertools.count():
            due = start + n * 0.1
            if due - start > seconds:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            body = b"\n".join(source.line() for _ in range(per_envelope))
            await (
                await producer.send(
                    POSTS, body, headers=[(ENVELOPE_HEADER, ENVELOPE_FORMAT)], partition=n % 8
                )
            )
            acked[0] += per_envelope
    finally:
        await producer.stop()


def peak(bootstrap: str, tags: int, workdir: Path) -> float:
    source = LongTail(tags, rate=1.0, speed=1.0)
    path = workdir / "peak.jsonl"
    path.write_bytes(b"\n".join(source.line() for _ in range(PEAK_EVENTS)) + b"\n")
    asyncio.run(replay([path], bootstrap))
    worker = Worker(bootstrap, workdir, app_id="soak-peak")
    try:
        t0 = None
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            seen = worker.counted()[0]
            if t0 is None and seen:
                t0, first = time.perf_counter(), seen
            if seen == PEAK_EVENTS:
                return (PEAK_EVENTS - first) / (time.perf_counter() - t0)
            time.sleep(0.2)
        raise SystemExit("the peak run did not finish")
    finally:
        worker.stop()


@contextlib.contextmanager
def under_load(
    workdir: Path, app_id: str, tags: int, rate: float, speed: float, seconds: float
) -> Iterator[tuple[Worker, threading.Thread, list[int]]]:
    """A fresh worker on a broker of its own (it must not start with another run's records),
    and the soak's producer sending ``rate`` events/s for ``seconds``, started in a thread:
    yields the worker, the thread and the count of events acknowledged."""
    with EmbeddedBroker(port=free_port(), log_path=str(workdir / f"{app_id}-broker.log")) as broker:
        b = broker.bootstrap
        asyncio.run(ensure_topics(b, {POSTS: 8, REJECTED: 8}))
        worker = Worker(b, workdir, app_id=app_id)
        worker.wait_up()
        acked = [0]
        source = LongTail(tags, rate, speed)
        sender = threading.Thread(
            target=lambda: asyncio.run(produce(b, source, rate, seconds, acked))
        )
        sender.start()
        try:
            yield worker, sender, acked
        finally:
            sender.join()
            worker.stop()


def sustained(tags: int, speed: float, rate: float, workdir: Path, minutes: float) -> float:
    """Events/s a fresh worker counts over the last ``SUSTAINED_LAST`` minutes, while the
    soak's producer sends its workload at ``rate`` for ``minutes`` (see the module docstring)."""
    start = end = None
    with under_load(workdir, "soak-sustained", tags, rate, speed, minutes * 60) as load:
        worker, sender, acked = load
        t0 = time.perf_counter()  # the sender has just started
        while sender.is_alive():
            time.sleep(1.0)
            if start is None and time.perf_counter() - t0 >= (minutes - SUSTAINED_LAST) * 60:
                n = worker.counted()[0]
                start = None if n is None else (time.perf_counter(), n)
        n = worker.counted()[0]
        end = None if n is None else (time.perf_counter(), n)
        lag = acked[0] - (n or 0)
    if start is None or end is None:
        raise SystemExit("the sustained peak could not be read from the worker")
    if lag <= rate:  # less than a second behind: it kept up, so this is a lower bound
        print(f"the worker kept up with {rate:,.0f} events/s", file=sys.stderr)
    return (end[1] - start[1]) / (end[0] - start[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--tags", type=int, default=1_000_000)
    parser.add_argument("--speed", type=float, default=120.0, help="event time / wall time")
    parser.add_argument("--load", type=float, default=0.8, help="fraction of the sustained peak")
    parser.add_argument("--sustained-minutes", type=float, default=SUSTAINED_MINUTES)
    args = parser.parse_args()
    seconds = args.minutes * 60
    with tempfile.TemporaryDirectory(prefix="spread-bench-soak-") as tmp:
        workdir = Path(tmp)
        with EmbeddedBroker(port=free_port(), log_path=str(workdir / "broker.log")) as broker:
            b = broker.bootstrap
            asyncio.run(ensure_topics(b, {POSTS: 8, REJECTED: 8}))
            fresh = peak(b, args.tags, workdir)
        print(f"fresh peak {fresh:,.0f} events/s", file=sys.stderr)
        top = sustained(args.tags, args.speed, fresh, workdir, args.sustained_minutes)
        rate = args.load * top
        print(f"sustained peak {top:,.0f} events/s; soak at {rate:,.0f}", file=sys.stderr)
        samples = []
        unanswered = 0
        with under_load(workdir, "soak", args.tags, rate, args.speed, seconds) as load:
            worker, sender, acked = load
            t0 = time.perf_counter()  # the sender has just started
            while sender.is_alive():
                time.sleep(SAMPLE_EVERY)
                m = progress(worker.url, POLL)
                if not m:
                    # No answer within the poll's timeout: not a sample (it would read as
                    # nothing counted), but said in the summary.
                    unanswered += 1
                    continue
                _, _, size, took = scrape(worker.url)
                samples.append(
                    (
                        time.perf_counter() - t0,
                        rss_bytes(worker.proc.pid),
                        acked[0] - m.get("spread_events_total", 0),
                        m.get("spread_hashtags_tracked", 0),
                        m.get("spread_minute_buckets", 0),
                        m.get("spread_minute_buckets_expired_total", 0),
                        size,
                        took,
                    )
                )
                if worker.proc.poll() is not None:
                    raise SystemExit(f"the worker exited: see {worker.log}")
    print(f"{'t (s)':>6} {'RSS MiB':>8} {'lag':>8} {'hashtags':>9} {'buckets':>9} "
          f"{'expired':>9} {'/metrics':>9} {'scrape':>7}")  # fmt: skip
    for t, rss, lag, tracked, buckets, expired, size, took in samples[2::3]:
        print(
            f"{t:6.0f} {rss / 2**20:8,.0f} {lag:8,.0f} {tracked:9,.0f} {buckets:9,.0f} "
            f"{expired:9,.0f} {size / 1e3:7,.0f}kB {took * 1000:5,.0f}ms"
        )
    third = len(samples) // 3

    def slope(part: list[tuple]) -> float:
        (ta, ra, *_), (tb, rb, *_) = part[0], part[-1]
        return (rb - ra) / 2**20 / ((tb - ta) / 60)

    def per_hashtag(part: list[tuple]) -> float:
        (_, ra, _, ha, *_), (_, rb, _, hb, *_) = part[0], part[-1]
        return (rb - ra) / max(hb - ha, 1)

    lags = [s[2] for s in samples]
    middle, last = slope(samples[third : 2 * third]), slope(samples[2 * third :])
    print(
        f"peak {fresh:,.0f} events/s fresh, {top:,.0f} sustained (sending at the fresh peak "
        f"for {args.sustained_minutes:g} min, counted over the last "
        f"{min(SUSTAINED_LAST, args.sustained_minutes):g}); "
        f"soak at {args.load:.0%} of the sustained peak ({rate:,.0f} events/s) for "
        f"{args.minutes:.0f} min, {args.speed:.0f}x event time: RSS {middle:+,.0f} MiB/min "
        f"in the middle third, {last:+,.0f} MiB/min in the last "
        f"({per_hashtag(samples[2 * third :]):,.0f} bytes per new hashtag); "
        f"lag max {max(lags):,.0f} events, last {lags[-1]:,.0f}; /metrics at most "
        f"{max(s[6] for s in samples) / 1e3:,.0f} kB, scrape median "
        f"{sorted(s[7] for s in samples)[len(samples) // 2] * 1000:,.0f} ms; "
        f"{unanswered} polls unanswered within 30 s"
    )


if __name__ == "__main__":
    main()

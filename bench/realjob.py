"""The real job: a whole simulated scenario replayed through one worker, checked against the file.

    python -m bench.realjob [--scenario metoo-2017] [--scale 1] [--seed 0]

1. The scenario is generated once to a JSONL file (as ``spread simulate --out`` would).
2. The file is recounted here, independently of the pipeline's code: orjson to decode, the
   normalisation of ``tests/groundtruth.py`` (``unicodedata`` NFKC, casefold, its own list of
   invisible characters), events, posts per hashtag and per (hashtag, region).
3. A worker is started on an embedded broker; once it is up, ``spread replay --speed max``
   sends the file while the worker reads: the job as a user runs it. The clock runs from the
   replay's start until ``/metrics`` shows every event read and every hashtag post applied.
4. Then one full scrape: every exported hashtag's total and region totals must equal the
   recount, and the worker's peak RSS (``VmHWM``) is read before it is stopped.

At ``--scale 1`` (``metoo-2017``: 20.5 million events, 3.5 GB of JSON lines in ``$TMPDIR``)
this takes about 12 minutes on the 2-core development machine (generating 4, recounting 1,
the job 6), and the embedded broker, which keeps topics in memory, grows to about 4 GB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import urllib.request
from collections import Counter
from functools import lru_cache
from pathlib import Path

import orjson
from prometheus_client.parser import text_string_to_metric_families

from bench.exporter import rss_bytes
from bench.recovery import progress
from bench.worker import start_worker
from pipeline.broker import EmbeddedBroker, free_port
from pipeline.replay import ReplayStats, replay
from pipeline.simulate.model import Engine, plan
from pipeline.simulate.output import write_jsonl
from pipeline.simulate.scenario import load
from tests.groundtruth import norm_region, norm_tag

POLL_SECONDS = 1.0


def recount(path: Path) -> tuple[int, Counter, Counter]:
    """(events, posts per hashtag, posts per (hashtag, region)) of a file of valid events."""
    tag = lru_cache(maxsize=1 << 20)(norm_tag)
    region_of = lru_cache(maxsize=4096)(norm_region)
    events = 0
    posts: Counter = Counter()
    by_region: Counter = Counter()
    with open(path, "rb") as f:
        for line in f:
            if not line.strip():
                continue
            event = orjson.loads(line)
            events += 1
            region = region_of(event.get("region"))
            for t in {tag(t) for t in event.get("hashtags") or ()} - {""}:
                posts[t] += 1
                by_region[(t, region)] += 1
    return events, posts, by_region


def scrape(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            return resp.read().decode()
    except OSError:
        return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="metoo-2017")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="spread-bench-realjob-") as tmp:
        workdir = Path(tmp)
        path = workdir / "events.jsonl"
        t = time.perf_counter()
        stats = write_jsonl(
            Engine(plan(load(args.scenario), args.scale), args.seed).run(), str(path), ReplayStats()
        )
        generated = time.perf_counter() - t
        t = time.perf_counter()
        n, posts, by_region = recount(path)
        recounted = time.perf_counter() - t
        print(
            f"{args.scenario} x{args.scale:g}: {stats.events:,} events generated in "
            f"{generated:.0f} s, {path.stat().st_size / 1e9:.2f} GB; recounted in {recounted:.0f} s"
        )
        with EmbeddedBroker(port=free_port(), log_path=str(workdir / "broker.log")) as broker:
            proc, url, log = start_worker(broker.bootstrap, workdir, "realjob")
            try:
                while not progress(url, "?name[]=spread_broker_up"):
                    if proc.poll() is not None:
                        raise SystemExit(f"worker exited with {proc.returncode}: see {log}")
                    time.sleep(POLL_SECONDS)
                t0 = time.perf_counter()
                sent = asyncio.run(replay([path], broker.bootstrap))
                replayed = time.perf_counter() - t0
                deadline = time.monotonic() + 4 * 3600
                done = {"spread_events_total": n, "spread_hashtag_posts_sum": posts.total()}
                while {k: progress(url).get(k) for k in done} != done:
                    if proc.poll() is not None:
                        raise SystemExit(f"worker exited with {proc.returncode}: see {log}")
                    if time.monotonic() > deadline:
                        raise SystemExit(f"not done in 4 hours: {progress(url)}, want {done}")
                    time.sleep(POLL_SECONDS)
                took = time.perf_counter() - t0
                rss = rss_bytes(proc.pid, "VmHWM") / 2**20
                wrong, checked = [], 0
                for fam in text_string_to_metric_families(scrape(url)):
                    for s in fam.samples:
                        if s.name == "hashtag_posts_total":
                            want = posts[s.labels["hashtag"]]
                        elif s.name == "hashtag_region_posts_total":
                            want = by_region[(s.labels["hashtag"], s.labels["region"])]
                        else:
                            continue
                        checked += 1
                        if s.value != want:
                            wrong.append((s.name, s.labels, s.value, want))
            finally:
                proc.terminate()
                proc.wait(60)
    print(
        f"real job: {n:,} events through one worker in {took:.0f} s "
        f"({n / took:,.0f} events/s; the replay alone sent them in {replayed:.0f} s, "
        f"{sent.events / replayed:,.0f} events/s)"
    )
    print(
        f"worker peak RSS: {rss:,.0f} MiB with its helper processes (the sum of their peaks; "
        f"{os.cpu_count()} cores, embedded broker)"
    )
    print(
        f"agreement with the file: events {n:,} and hashtag posts {posts.total():,} equal; "
        f"{checked:,} exported totals and region totals checked, {len(wrong)} wrong"
        + (f": {wrong[:5]}" if wrong else "")
    )
    if wrong:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

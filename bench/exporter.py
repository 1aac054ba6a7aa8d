"""The exporter with a million hashtags in the tables: what a scrape costs and what being
scraped costs the worker.

    python -m bench.exporter [--tags 1000000] [--events 1000000]

1. **Load**: ``--tags`` distinct hashtags, five per event, all in the 20 minutes of event time
   before the measured phases, so every one is still a ranking candidate during them (the
   worst case for agents.ranking), counted by one worker on the embedded broker, in two
   halves. Reported: RSS per hashtag from the second half's growth (the first half has already
   paid the interpreter's and the batches' transient peaks, which RSS never gives back).
2. **Scrapes**: ten full scrapes of ``/metrics`` while idle: median and worst time, size, and
   every exported total checked against the input.
3. **Throughput under scraping**: the Zipf workload (bench.workload), ``--events`` events in
   each of ``4 * ROUNDS`` phases on the same worker, in the order unscraped, scraped (a full
   scrape every 5 s, Prometheus' interval in deploy/), scraped, unscraped, and again: the
   order cancels a steady drift (the worker slows as its tables grow: 156,000 then 128,000
   then 118,000 events/s in three unscraped phases of one run). Every phase sits within the
   ranking's 30-minute span with the loaded tags. Each mode's rate is its events over its
   seconds, summed over its phases; the ratio comes first. At ~120,000 events/s a phase lasts
   ~8 s and holds one or two scrapes: one pair of phases measured this machine's noise (7 %
   and 12 % in two runs) more than the scrapes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import orjson

from bench.throughput import scrape
from bench.worker import start_worker
from bench.workload import START, events
from pipeline.broker import EmbeddedBroker, free_port
from pipeline.replay import replay

POLL = "?name[]=spread_events_total&name[]=spread_hashtag_posts_sum"
LOAD_SPAN = 1200.0  # event-time seconds the loaded tags are spread over
ROUNDS = 2  # of four measured phases: unscraped, scraped, scraped, unscraped
ORDER = ("quiet", "scraped", "scraped", "quiet")
PHASE_SPAN = 75.0  # event-time seconds of each measured phase: all of them within 10 minutes
TAGS_PER_EVENT = 5
SCRAPE_EVERY = 5.0


def load_events(tags: int) -> list[bytes]:
    n = tags // TAGS_PER_EVENT
    step = LOAD_SPAN / n
    return [
        orjson.dumps(
            {
                "id": f"load-{i}",
                "ts": START - LOAD_SPAN + i * step,
                "user": f"u-{i % 50_000}",
                "region": "US",
                "hashtags": [f"longtail{i * TAGS_PER_EVENT + j:07d}" for j in range(5)],
            }
        )
        for i in range(n)
    ]


T0 = time.perf_counter()


def step_done(what: str) -> None:
    print(f"[{time.perf_counter() - T0:6.0f} s] {what}", file=sys.stderr, flush=True)


def with_children(pid: int) -> list[int]:
    """``pid`` and its child processes (a worker's stage-1 helper, multiprocessing's
    resource tracker)."""
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # gone meanwhile
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                pids.append(int(entry.name))
    return pids


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    """Resident memory now (``VmRSS``) or at its peak (``VmHWM``), in bytes, of a process
    and its children; for ``VmHWM`` the sum of their peaks (an upper bound of the peak of
    their sum)."""
    total = 0
    for p in with_children(pid):
        try:
            lines = Path(f"/proc/{p}/status").read_text().splitlines()
        except OSError:
            continue
        total += sum(int(x.split()[1]) * 1024 for x in lines if x.startswith(f"{field}:"))
    return total


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process (all its threads) and its children have used so
    far."""
    total = 0
    for p in with_children(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def posts_of(lines: list[bytes]) -> Counter:
    return Counter(t.casefold() for x in lines for t in set(orjson.loads(x)["hashtags"]))


class Worker:
    def __init__(self, bootstrap: str, workdir: Path, app_id: str = "bench-exporter") -> None:
        self.proc, self.url, self.log = start_worker(bootstrap, workdir, app_id, app_id)

    def counted(self) -> tuple[float | None, float | None]:
        m, _, _, _ = scrape(self.url + POLL)
        return m.get("spread_events_total"), m.get("spread_hashtag_posts_sum")

    def feed(self, path: Path, bootstrap: str, events_total: int, posts_sum: int) -> float:
        """Replay ``path`` (in a thread, so that polling starts at once) and return the seconds
        from the first of its events counted until the worker shows both totals."""
        base, _ = self.counted()
        sender = threading.Thread(target=lambda: asyncio.run(replay([path], bootstrap)))
        sender.start()
        t0 = None
        deadline = time.monotonic() + 1800
        try:
            while time.monotonic() < deadline:
                seen, posts = self.counted()
                if t0 is None and seen is not None and seen > (base or 0):
                    t0 = time.perf_counter()
                if seen == events_total and posts == posts_sum:
                    return time.perf_counter() - (t0 or time.perf_counter())
                if self.proc.poll() is not None:
                    raise SystemExit(f"worker exited with {self.proc.returncode}: see {self.log}")
                time.sleep(0.1)
            raise SystemExit("the worker did not finish in time")
        finally:
            sender.join()

    def wait_up(self) -> None:
        deadline = time.monotonic() + 120
        while self.counted()[0] is None:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit(f"the worker did not start: see {self.log}")
            time.sleep(0.2)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 60 s (saying so, with the end of the worker's log):
        a worker far behind may still be in a long batch, and the figures taken so far must
        not be lost to a shutdown."""
        self.proc.terminate()
        sent = time.monotonic()
        try:
            self.proc.wait(60)
            print(f"the worker stopped {time.monotonic() - sent:.1f} s after SIGTERM",
                  file=sys.stderr)  # fmt: skip
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            tail = Path(self.log).read_text(errors="replace")[-2000:]
            print(f"the worker did not stop within 60 s of SIGTERM; killed. Its log ends:\n{tail}",
                  file=sys.stderr)  # fmt: skip


def scraper(url: str, stop: threading.Event, took: list[float]) -> None:
    while not stop.wait(SCRAPE_EVERY):
        _, by_tag, _, seconds = scrape(url)
        if by_tag:
            took.append(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    load = load_events(args.tags)
    step = PHASE_SPAN / args.events
    expected = posts_of(load)
    step_done("inputs generated")
    with tempfile.TemporaryDirectory(prefix="spread-bench-exporter-") as tmp:
        workdir = Path(tmp)
        files = {}
        half = len(load) // 2
        for name, lines in {"load1": load[:half], "load2": load[half:]}.items():
            files[name] = workdir / f"{name}.jsonl"
            files[name].write_bytes(b"\n".join(lines) + b"\n")
        # Written one at a time, each phase's posts counted as it is: the lines of every phase
        # at once would hold gigabytes.
        phases: list[tuple[str, Path, Counter]] = []
        for i in range(len(ORDER) * ROUNDS):
            name = ORDER[i % len(ORDER)]
            lines = list(
                events(args.events, start=START + i * PHASE_SPAN, step=step, prefix=f"p{i}")
            )
            path = workdir / f"phase{i}.jsonl"
            path.write_bytes(b"\n".join(lines) + b"\n")
            phases.append((name, path, posts_of(lines)))
        del lines
        step_done("phases generated")
        with EmbeddedBroker(port=free_port(), log_path=str(workdir / "broker.log")) as broker:
            worker = Worker(broker.bootstrap, workdir)
            try:
                worker.wait_up()
                first = posts_of(load[:half]).total()
                loaded = worker.feed(files["load1"], broker.bootstrap, half, first)
                rss_half = rss_bytes(worker.proc.pid)
                loaded += worker.feed(files["load2"], broker.bootstrap, len(load), expected.total())
                rss_after = rss_bytes(worker.proc.pid)
                step_done(f"{args.tags:,} hashtags loaded")

                times, size, exported = [], 0, {}
                for _ in range(10):
                    _, exported, size, seconds = scrape(worker.url)
                    times.append(seconds)
                wrong = {t: v for t, v in exported.items() if v != expected[t]}
                if not exported or wrong:
                    raise SystemExit(f"wrong totals in /metrics: {wrong or 'none exported'}")
                step_done("idle scrapes done")

                spent = {"quiet": 0.0, "scraped": 0.0}
                counted = {"quiet": 0, "scraped": 0}
                took: list[float] = []
                n = len(load)
                for name, path, posts in phases:
                    stop = threading.Event()
                    thread = threading.Thread(target=scraper, args=(worker.url, stop, took))
                    if name == "scraped":
                        thread.start()
                    expected += posts
                    n += args.events
                    seconds = worker.feed(path, broker.bootstrap, n, expected.total())
                    stop.set()
                    if thread.is_alive():
                        thread.join()
                    spent[name] += seconds
                    counted[name] += args.events
                    step_done(f"{name} phase: {args.events / seconds:,.0f} events/s")
                rates = {name: counted[name] / spent[name] for name in spent}
                _, exported, _, _ = scrape(worker.url)
                wrong = {t: v for t, v in exported.items() if v != expected[t]}
                if wrong:
                    raise SystemExit(f"wrong totals in /metrics: {wrong}")
            finally:
                worker.stop()
    tracked = len(expected)
    print(
        f"throughput with a full scrape every {SCRAPE_EVERY:.0f} s: "
        f"{rates['scraped'] / rates['quiet']:.2f}x unscraped "
        f"({rates['scraped']:,.0f} vs {rates['quiet']:,.0f} events/s, phases "
        f"{'-'.join(n[0].upper() for n, _, _ in phases)}, {tracked:,} hashtags in the tables)"
    )
    print(
        f"/metrics with {tracked:,} hashtags: median {statistics.median(times) * 1000:.0f} ms, "
        f"worst {max(times) * 1000:.0f} ms idle; {size / 1e6:.2f} MB, "
        f"{len(exported)} hashtags exported; under load: median "
        f"{statistics.median(took) * 1000 if took else 0:.0f} ms over {len(took)} scrapes"
    )
    added = len(posts_of(load[len(load) // 2 :]))
    print(
        f"memory: {(rss_after - rss_half) / added:,.0f} bytes per hashtag "
        f"({rss_half / 2**20:,.0f} -> {rss_after / 2**20:,.0f} MiB RSS for the second "
        f"{added:,} hashtags; {args.tags:,} loaded in {loaded:.0f} s)"
    )


if __name__ == "__main__":
    main()

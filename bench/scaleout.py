"""Scale-out: two worker processes on 8 partitions against one, on the same records.

    python -m bench.scaleout [--events 500000]

For each run, N workers with one app id start on a fresh embedded broker and are given
``SETTLE`` seconds to join and split the partitions of ``posts`` and ``hashtag-deltas``; then
the Zipf workload (bench.workload) is replayed at full speed, and the run is timed from the
first event counted to the moment the workers' ``/metrics`` together show every event read and
every hashtag post applied
(``spread_events_total`` and ``spread_hashtag_posts_sum`` summed over the workers, polled with
``name[]``). Workers run without their stage-1 helper process (``--ingest-process off``): a
worker is then one process, and "a core per worker" below means what it says. The ratio is
only meaningful with a core per worker plus the broker's share: the number of cores is
printed with it.

CPU accounting, from the replay's start to the end (every event, whenever a worker read it):
each worker's and the broker's CPU time (user + system, every thread, from ``/proc``). From
it, the cores they used, the CPU per event of the workers and of the broker, and a
*projection* for a machine with a core per worker and the broker's share elsewhere: a worker
given a core of its own finishes its part in about its CPU time, so the run would take the
largest worker's CPU time (the split's imbalance counts). On a machine
with fewer cores than workers plus the broker, that projection is what the measured ratio
cannot show; it assumes a worker's CPU per event does not change when it stops waiting for a
core, which is why it is printed as a projection beside the measured figure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench.exporter import cpu_seconds
from bench.recovery import progress
from bench.worker import start_worker
from bench.workload import events
from pipeline.broker import EmbeddedBroker, free_port
from pipeline.replay import replay

SETTLE = 10.0  # seconds for the workers to join and for the rebalance to finish
ONE_PROCESS = ("--ingest-process", "off")


@dataclass
class Run:
    rate: float  # events/s, measured from the first event counted
    events: int
    seconds: float  # from the replay's start to the end
    worker_cpu: list[float]  # CPU seconds per worker over those seconds
    broker_cpu: float

    @property
    def cores_used(self) -> float:
        return (sum(self.worker_cpu) + self.broker_cpu) / self.seconds

    def per_event_us(self, cpu: float) -> float:
        return cpu / self.events * 1e6

    @property
    def projected(self) -> float:
        """Events/s with a core per worker: the slowest worker's CPU time bounds the run."""
        return self.events / max(self.worker_cpu)


def cpu_of(procs: list[subprocess.Popen]) -> list[float]:
    return [cpu_seconds(p.pid) for p in procs]


def run(data: Path, n: int, posts: int, workers: int, workdir: Path) -> Run:
    with EmbeddedBroker(port=free_port(), log_path=str(workdir / f"broker-{workers}.log")) as b:
        urls, procs = [], []
        for i in range(workers):
            proc, url, _ = start_worker(
                b.bootstrap, workdir, f"{workers}-{i}", f"scale-{workers}", ONE_PROCESS
            )
            procs.append(proc)
            urls.append(url)
        try:
            deadline = time.monotonic() + 120
            while not all(progress(u) for u in urls):
                if time.monotonic() > deadline:
                    raise SystemExit(f"the workers did not start: see {workdir}")
                time.sleep(0.5)
            time.sleep(SETTLE)
            start, cpu0 = time.perf_counter(), cpu_of([*procs, b.process])
            asyncio.run(replay([data], b.bootstrap, envelope=1000))
            t0 = first = None
            deadline = time.monotonic() + 1800
            while time.monotonic() < deadline:
                seen = [progress(u) for u in urls]
                read = sum(m.get("spread_events_total", 0) for m in seen)
                applied = sum(m.get("spread_hashtag_posts_sum", 0) for m in seen)
                if t0 is None and read > 0:
                    t0, first = time.perf_counter(), read
                if read == n and applied == posts and t0 is not None:
                    end = time.perf_counter()
                    cpu = [c - c0 for c, c0 in zip(cpu_of([*procs, b.process]), cpu0, strict=True)]
                    return Run((n - first) / (end - t0), n, end - start, cpu[:-1], cpu[-1])
                if any(p.poll() is not None for p in procs):
                    raise SystemExit(f"a worker exited: see {workdir}")
                time.sleep(0.5)
            raise SystemExit("the workers did not finish in 30 minutes")
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000)
    args = parser.parse_args()
    lines = list(events(args.events))
    posts = Counter(t for x in lines for t in {t.casefold() for t in orjson.loads(x)["hashtags"]})
    with tempfile.TemporaryDirectory(prefix="spread-scaleout-") as tmp:
        workdir = Path(tmp)
        data = workdir / "events.jsonl"
        data.write_bytes(b"\n".join(lines) + b"\n")
        one = run(data, args.events, posts.total(), 1, workdir)
        two = run(data, args.events, posts.total(), 2, workdir)
    print(f"two workers / one            : {two.rate / one.rate:.2f}x measured")
    print(
        f"  with a core per worker     : {two.projected / one.projected:.2f}x (CPU-time projection)"
    )
    for name, r in (("one worker", one), ("two workers (one app id)", two)):
        split = " + ".join(f"{c:.1f}" for c in r.worker_cpu)
        print(
            f"{name:<29}: {r.rate:>10,.0f} events/s measured, {r.projected:,.0f} projected; "
            f"CPU s: workers {split} ({r.per_event_us(sum(r.worker_cpu)):.1f} us/event), "
            f"broker {r.broker_cpu:.1f} ({r.per_event_us(r.broker_cpu):.1f} us/event); "
            f"{r.cores_used:.2f} cores used"
        )
    print(
        f"{args.events:,} events, envelopes of 1000, 8 partitions, {os.cpu_count()} cores shared "
        "by the workers, the broker and this script"
    )


if __name__ == "__main__":
    main()

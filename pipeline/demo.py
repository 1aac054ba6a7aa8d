"""``spread demo``: broker, worker and a paced replay of the sample, in one command.

Starts the embedded broker and a worker (as a child process: ``python -m agents worker``),
replays the sample file in event time, prints the top hashtags once the worker has counted
everything, and leaves ``/metrics`` up until Ctrl-C, which stops everything cleanly.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from pipeline.broker import EmbeddedBroker, free_port, port_is_free
from pipeline.progress import Reporter
from pipeline.replay import replay

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample-metoo-2017.jsonl"


def _pick(host: str, preferred: int) -> int:
    return preferred if port_is_free(host, preferred) else free_port(host)


def _scrape(url: str) -> dict[str, list]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def _wait(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


def _summary(url: str) -> None:
    from rich.console import Console
    from rich.table import Table

    m = _scrape(url)
    totals = {s["hashtag"]: v for s, v in m.get("hashtag_posts_total", [])}
    regions = {s["hashtag"]: v for s, v in m.get("hashtag_regions_reached", [])}
    rate = {
        s["hashtag"]: v for s, v in m.get("hashtag_posts_per_minute", []) if s["window"] == "1h"
    }
    table = Table(title="Top hashtags (event time)")
    table.add_column("hashtag")
    table.add_column("posts", justify="right")
    table.add_column("regions", justify="right")
    table.add_column("posts/min, last hour", justify="right")
    for tag, n in sorted(totals.items(), key=lambda kv: -kv[1])[:10]:
        table.add_row(tag, f"{n:,.0f}", f"{regions.get(tag, 0):.0f}", f"{rate.get(tag, 0):.1f}")
    Console(stderr=True).print(table)


def run_demo(files: Sequence[str], speed: float | None, metrics_port: int, broker_port: int) -> int:
    host = "127.0.0.1"
    files = list(files) or [str(SAMPLE)]
    broker = EmbeddedBroker(host=host, port=_pick(host, broker_port))
    broker.start()
    metrics_port = _pick(host, metrics_port)
    url = f"http://{host}:{metrics_port}/metrics"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agents",
            "worker",
            "--broker",
            broker.bootstrap,
            "--metrics-port",
            str(metrics_port),
            "--data-dir",
            ".demo/faust",
        ],
        start_new_session=True,  # Ctrl-C reaches the demo only: it stops worker, then broker
    )
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(f"demo: broker on {broker.bootstrap}, worker metrics on {url}", file=sys.stderr)

        def up() -> bool:
            if worker.poll() is not None:
                raise RuntimeError("worker exited")
            return _scrape(url) is not None

        try:
            ready = _wait(up, 60)
        except RuntimeError:
            ready = False
        if not ready:
            print("spread: error: the worker did not start", file=sys.stderr)
            return 1
        signal.signal(signal.SIGINT, signal.default_int_handler)
        with Reporter("replay") as reporter:
            stats = asyncio.run(
                replay(files, broker.bootstrap, speed=speed, on_progress=reporter.update)
            )
        signal.signal(signal.SIGINT, lambda *_: stop.set())

        def counted() -> bool:
            read = sum(v for _, v in _scrape(url).get("spread_events_total", []))
            return read >= stats.events

        # Stage 1 has read everything once spread_events_total says so; stage 2 applies the
        # last deltas a moment later, so the table waits for the hashtag totals to settle.
        settled: list[float] = []

        def hashtags_settled() -> bool:
            settled.append(sum(v for _, v in _scrape(url).get("hashtag_posts_total", [])))
            return len(settled) > 3 and settled[-1] == settled[-4] > 0

        if _wait(counted, 60) and _wait(hashtags_settled, 30):
            _summary(url)
        print(
            f"\nMetrics: {url}  (Prometheus text; Ctrl-C stops the worker and the broker)",
            file=sys.stderr,
        )
        while not stop.is_set() and worker.poll() is None:
            stop.wait(0.5)
        if not stop.is_set():
            print(f"spread: error: the worker exited with {worker.returncode}", file=sys.stderr)
            return 1
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
        broker.stop()
        print("demo: stopped", file=sys.stderr)

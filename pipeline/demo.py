"""``spread demo``: broker, worker and October 2017 unfolding, in one command.

Starts the embedded broker and a worker (as a child process: ``python -m agents worker``),
then plays the ``metoo-2017`` scenario of the simulator at a small scale (or replays FILES)
in event time, fast enough to watch: 72 hours in about three minutes. While it plays, a line
every few seconds says where the movement has got to (event time, the leading hashtags, the
regions they reached). Once the worker has counted everything it prints the top hashtags and
leaves ``/metrics`` up until Ctrl-C, which stops everything cleanly.
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
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from pipeline.broker import EmbeddedBroker, free_port, port_is_free
from pipeline.progress import Reporter
from pipeline.replay import ReplayStats, replay, send_lines


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


@dataclass(frozen=True)
class Source:
    """What the demo plays: FILES when given, else a simulated scenario."""

    files: Sequence[str] = ()
    scenario: str = "metoo-2017"
    scale: float = 0.01
    seed: int = 0

    def describe(self) -> str:
        if self.files:
            return "replaying " + ", ".join(self.files)
        return f"simulating {self.scenario} at scale {self.scale:g} (seed {self.seed})"


def _play(source: Source, bootstrap: str, speed: float | None, reporter: Reporter) -> ReplayStats:
    if source.files:
        return asyncio.run(
            replay(source.files, bootstrap, speed=speed, on_progress=reporter.update)
        )
    from pipeline.simulate import model, output, scenario

    stats = ReplayStats()
    resolved = model.plan(scenario.load(source.scenario), source.scale)
    items = output.tracked(model.events(resolved, source.seed), stats, resolved.scenario)
    return asyncio.run(
        send_lines(items, bootstrap, stats, speed=speed, on_progress=reporter.update)
    )


NARRATE_EVERY = 10.0  # wall seconds between "where has it got to" lines


def headline(metrics: dict[str, list], n: int = 4) -> str | None:
    """One line: the watermark and the ``n`` largest hashtags with the regions they reached."""
    marks = [v for _, v in metrics.get("spread_watermark_timestamp_seconds", []) if v > 0]
    totals = {s["hashtag"]: v for s, v in metrics.get("hashtag_posts_total", [])}
    if not marks or not totals:
        return None
    regions = {s["hashtag"]: v for s, v in metrics.get("hashtag_regions_reached", [])}
    when = datetime.fromtimestamp(max(marks), UTC).strftime("%a %d %b %Y %H:%M UTC")
    top = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    parts = [f"#{tag} {count:,.0f} in {regions.get(tag, 0):.0f} regions" for tag, count in top]
    return f"{when}  " + " · ".join(parts)


def _narrate(url: str, reporter: Reporter, done: threading.Event) -> None:
    while not done.wait(NARRATE_EVERY):
        try:
            line = headline(_scrape(url))
        except OSError:
            continue
        if line:
            reporter.note(line)


def run_demo(source: Source, speed: float | None, metrics_port: int, broker_port: int) -> int:
    host = "127.0.0.1"
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
        print(f"demo: {source.describe()}", file=sys.stderr)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        played = threading.Event()
        with Reporter("simulate" if not source.files else "replay") as reporter:
            narrator = threading.Thread(target=_narrate, args=(url, reporter, played), daemon=True)
            narrator.start()
            try:
                stats = _play(source, broker.bootstrap, speed, reporter)
            finally:
                played.set()
                narrator.join()
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

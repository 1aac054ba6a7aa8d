"""Real parts for integration tests: the embedded broker on a free port, real worker
processes, the real CLI, real HTTP scrapes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipeline.broker import EmbeddedBroker, free_port

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample-metoo-2017.jsonl"
CLI = [sys.executable, "-m", "agents"]


def wait_for_signals(done: Callable[[], Metrics | None], timeout: float, what: str) -> Metrics:
    """The first scrape ``done()`` returns (None: not yet) whose signals were computed after
    the counts settled: a timer computes rates, trend and R_t and chooses the exported
    hashtags (agents.collector), a scrape reads the totals."""
    settled: list[float] = []

    def check() -> Metrics | None:
        m = done()
        if m is None:
            return None
        if not settled:
            settled.append(time.time())
        computed = m.get("spread_signals_timestamp_seconds", {}).get((), 0.0)
        return m if computed > settled[0] else None

    return wait_for(check, timeout, what)


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval=0.2):
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


@pytest.fixture
def broker(tmp_path):
    b = EmbeddedBroker(port=free_port(), log_path=str(tmp_path / "broker.log"))
    with b:
        yield b


Metrics = dict[str, dict[tuple[tuple[str, str], ...], float]]


def parse_metrics(text: str) -> Metrics:
    out: Metrics = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return out


@dataclass
class Worker:
    broker: str
    workdir: Path
    app_id: str = "it"
    partitions: int = 8
    metrics_port: int = field(default_factory=free_port)
    extra_args: tuple[str, ...] = ()
    proc: subprocess.Popen | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self) -> Worker:
        self.starts += 1
        log = open(self.workdir / f"worker-{self.metrics_port}-{self.starts}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                *CLI,
                "worker",
                "--broker",
                self.broker,
                "--metrics-port",
                str(self.metrics_port),
                "--partitions",
                str(self.partitions),
                "--app-id",
                self.app_id,
                "--data-dir",
                str(self.workdir / f"faust-{self.metrics_port}"),
                "--loglevel",
                "info",
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
        )
        wait_for(self.scrape_text, 60, f"{self.url} to answer")
        return self

    def scrape_text(self) -> str | None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"worker exited with {self.proc.returncode}")
        try:
            with urllib.request.urlopen(self.url, timeout=5) as resp:
                return resp.read().decode()
        except OSError:
            return None

    def scrape(self) -> Metrics:
        text = self.scrape_text()
        assert text is not None, "scrape failed"
        return parse_metrics(text)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc else 0
        proc.send_signal(sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("worker did not stop within {timeout} s of SIGTERM") from None


@pytest.fixture
def make_worker(broker, tmp_path):
    workers: list[Worker] = []

    def make(**kwargs) -> Worker:
        w = Worker(broker=broker.bootstrap, workdir=tmp_path, **kwargs)
        workers.append(w)
        return w

    yield make
    for w in workers:
        w.stop(signal.SIGKILL)


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args], capture_output=True, timeout=timeout, env={**os.environ, "COLUMNS": "200"}
    )


def replay(broker: EmbeddedBroker, *args: str) -> subprocess.CompletedProcess:
    result = run_cli("replay", "--broker", broker.bootstrap, *args)
    assert result.returncode == 0, result.stderr.decode()
    return result


__all__ = [
    "SAMPLE",
    "Worker",
    "parse_metrics",
    "replay",
    "run_cli",
    "signal",
    "wait_for",
    "wait_for_signals",
]

"""Starting a ``spread worker`` process for a benchmark: one way for every bench."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pipeline.broker import free_port


def start_worker(
    bootstrap: str,
    workdir: Path,
    name: str,
    app_id: str | None = None,
    extra: tuple[str, ...] = (),
) -> tuple[subprocess.Popen, str, Path]:
    """A worker on a free metrics port with its own data directory and log (``name``), in
    group ``app_id`` (default: the worker's own default). Returns the process, its
    ``/metrics`` URL and its log's path."""
    port = free_port()
    log = workdir / f"{name}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "agents", "worker", "--broker", bootstrap,
         "--metrics-port", str(port), "--data-dir", str(workdir / f"faust-{name}"),
         *(("--app-id", app_id) if app_id else ()), *extra],
        stdout=open(log, "wb"),  # noqa: SIM115 - the child keeps it
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    return proc, f"http://127.0.0.1:{port}/metrics", log

"""Progress of long jobs: a live line on a terminal, plain lines every few seconds otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any

PLAIN_EVERY_SECONDS = 5.0


class Reporter:
    """Shows events, events/s and ETA (from bytes read) for an object with those fields."""

    def __init__(self, label: str, stream: Any = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self._progress: Any = None
        self._task: Any = None
        self._last_plain = 0.0

    def __enter__(self) -> Reporter:
        if self.live:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[events]:>12,} events"),
                TextColumn("{task.fields[rate]:>10,.0f} events/s"),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=None, events=0, rate=0.0)
        return self

    def update(self, stats: Any) -> None:
        if self._progress is not None:
            self._progress.update(
                self._task,
                total=stats.bytes_total or None,
                completed=stats.bytes_read,
                events=stats.events,
                rate=stats.rate,
            )
            return
        now = time.monotonic()
        if now - self._last_plain >= PLAIN_EVERY_SECONDS:
            self._last_plain = now
            done = stats.bytes_read / stats.bytes_total if stats.bytes_total else 0.0
            eta = (stats.elapsed / done - stats.elapsed) if done > 0 else float("nan")
            print(
                f"{self.label}: {stats.events:,} events, {stats.rate:,.0f} events/s, "
                f"{done:.0%}, ETA {eta:.0f} s",
                file=self.stream,
                flush=True,
            )

    def note(self, line: str) -> None:
        """A line of commentary: above the live bar on a terminal, a plain line otherwise.
        Safe from another thread (rich's console takes a lock)."""
        if self._progress is not None:
            self._progress.console.print(line, markup=False, highlight=False)
        else:
            print(line, file=self.stream, flush=True)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

"""The native format: JSON lines of events (DESIGN "Event model"), plain or gzip.

Lines are passed through as bytes, unparsed beyond what pacing needs: judging an event is the
worker's job, so a bad line is still sent and lands in the dead-letter topic with its reason.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b"


class FormatError(ValueError):
    """The file cannot be read as this format; one line meant for a user."""


def open_binary(path: str | Path) -> tuple[BinaryIO, BinaryIO]:
    """(stream to read lines from, raw file for byte progress); gzip by suffix or magic."""
    try:
        raw = open(path, "rb")  # noqa: SIM115
        magic = raw.peek(2)[:2]
    except OSError as exc:
        raise FormatError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if magic == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw), raw
    return raw, raw


def iter_lines(stream: BinaryIO, path: str | Path = "") -> Iterator[bytes]:
    """Non-blank lines without their line ending."""
    try:
        for line in stream:
            line = line.rstrip(b"\r\n")
            if line.strip():
                yield line
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise FormatError(f"cannot read {path}: {exc}") from exc

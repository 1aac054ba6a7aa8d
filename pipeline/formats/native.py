"""The native format: JSON lines of events (DESIGN "Event model"), plain or compressed.

Lines are passed through as bytes, unparsed beyond what pacing needs: judging an event is the
worker's job, so a bad line is still sent and lands in the dead-letter topic with its reason.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import zstandard

GZIP_MAGIC = b"\x1f\x8b"
BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
STDIN = "-"


class FormatError(ValueError):
    """The file cannot be read as this format; one line meant for a user."""


def open_binary(path: str | Path) -> tuple[BinaryIO, BinaryIO]:
    """(stream to read lines from, raw file for byte progress).

    Compression is recognised by its magic bytes, whatever the suffix: gzip, bzip2, xz,
    zstd. ``-`` is standard input.
    """
    try:
        raw = sys.stdin.buffer if str(path) == STDIN else open(path, "rb")  # noqa: SIM115
        magic = raw.peek(6)[:6]
    except OSError as exc:
        raise FormatError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if magic.startswith(GZIP_MAGIC):
        return gzip.GzipFile(fileobj=raw), raw
    if magic.startswith(BZIP2_MAGIC):
        return bz2.BZ2File(raw), raw
    if magic.startswith(XZ_MAGIC):
        return lzma.LZMAFile(raw), raw
    if magic.startswith(ZSTD_MAGIC):
        reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        return io.BufferedReader(reader), raw  # type: ignore[arg-type]
    return raw, raw


def position(raw: BinaryIO) -> int:
    """Bytes read so far of the raw file (0 for a pipe, which cannot tell)."""
    try:
        return raw.tell()
    except OSError:
        return 0


def size(path: str | Path) -> int:
    """Size of a file in bytes (0 for standard input: unknown)."""
    return 0 if str(path) == STDIN else os.path.getsize(path)


def iter_lines(stream: BinaryIO, path: str | Path = "") -> Iterator[bytes]:
    """Non-blank lines without their line ending."""
    try:
        for line in stream:
            line = line.rstrip(b"\r\n")
            if line.strip():
                yield line
    except (OSError, EOFError, lzma.LZMAError, zstandard.ZstdError) as exc:
        raise FormatError(f"cannot read {path}: {exc}") from exc

"""Replay reads plain, gzip, bzip2, xz and zstd files (by content, not suffix) and stdin."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import sys
from pathlib import Path

import pytest
import zstandard

from pipeline.formats.native import FormatError
from pipeline.replay import ReplayStats, _file_lines
from tests.groundtruth import lines_of

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample-metoo-2017.jsonl"

COMPRESSORS = {
    "plain": lambda b: b,
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
}


@pytest.mark.parametrize("name", list(COMPRESSORS))
def test_every_compression_gives_the_same_lines(tmp_path, name):
    path = tmp_path / "events.data"  # no telling suffix: the content decides
    path.write_bytes(COMPRESSORS[name](SAMPLE.read_bytes()))
    stats = ReplayStats()
    assert list(_file_lines([path], stats)) == lines_of([SAMPLE])
    assert stats.bytes_read == path.stat().st_size


def test_standard_input(monkeypatch):
    data = gzip.compress(SAMPLE.read_bytes())
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(data))))
    assert list(_file_lines(["-"], ReplayStats())) == lines_of([SAMPLE])


def test_a_corrupt_archive_is_a_one_line_error(tmp_path):
    path = tmp_path / "broken.xz"
    path.write_bytes(lzma.compress(SAMPLE.read_bytes())[:2000])
    with pytest.raises(FormatError, match="cannot read"):
        list(_file_lines([path], ReplayStats()))

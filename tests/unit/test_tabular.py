"""CSV/TSV dumps: columns found by name or --map, times in every common form, hashtags from a
column or from the text, bad rows reported with their line."""

from __future__ import annotations

import orjson
import pytest

from pipeline.formats.convert import ConvertError
from pipeline.formats.native import FormatError
from pipeline.formats.tabular import parse_hashtags, parse_mapping, parse_time
from pipeline.replay import ReplayStats, _file_lines, detect


def events(path, **kwargs) -> tuple[list[dict], ReplayStats]:
    stats = ReplayStats()
    out = [orjson.loads(x) for x in _file_lines([path], stats, kwargs.pop("fmt", "auto"), **kwargs)]
    return out, stats


def test_csv_with_common_names_and_a_multiline_text(tmp_path):
    path = tmp_path / "dump.csv"
    path.write_text(
        "tweet_id,created_at,text,user_location,lang\n"
        '1,2017-10-15T20:21:00Z,"Me too. #MeToo #YoTambien",Madrid,es\n'
        '2,1508098900000,"two\nlines #balancetonporc",FR,fr\n'
        '3,not a time,"#x",,en\n'
        "4,Sun Oct 15 20:22:00 +0000 2017,no tags here,,en\n"
    )
    got, stats = events(path)
    assert [e["id"] for e in got] == ["1", "2", "4"]
    assert [e["ts"] for e in got] == [1508098860.0, 1508098900.0, 1508098920.0]
    assert [e["hashtags"] for e in got] == [["MeToo", "YoTambien"], ["balancetonporc"], []]
    assert [e["region"] for e in got] == ["ES", "FR", "ZZ"]
    assert stats.skipped == 1 and stats.problems[0].endswith(
        ":5: no usable time in column 'created_at'"
    )


def test_tsv_with_a_hashtag_column_and_a_mapping(tmp_path):
    path = tmp_path / "dump.tsv"
    path.write_text(
        "when\tpost\ttopics\tcountry\n"
        '1508098860\thello\t["MeToo", "metoo"]\tus\n'
        "1508098861\thi\t#A, #B | C\tGermany\n"
    )
    got, _ = events(
        path, fmt="csv", mapping={"ts": "when", "hashtags": "topics", "region": "country"}
    )
    assert [e["hashtags"] for e in got] == [["MeToo", "metoo"], ["A", "B", "C"]]
    assert [e["region"] for e in got] == ["US", "DE"]
    assert got[0]["id"] == "dump.tsv:2"  # no id column: file and line, stable across replays


def test_detection_and_header_errors(tmp_path):
    assert detect(b"id,created_at,text") == "csv"
    assert detect(b"just some text") == "native"
    path = tmp_path / "no-time.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(FormatError, match="no time column"):
        events(path, fmt="csv")
    with pytest.raises(ConvertError, match="FIELD=COLUMN"):
        parse_mapping("ts")
    with pytest.raises(FormatError, match="no such column"):
        events(path, fmt="csv", mapping={"ts": "nope"})


def test_field_parsers():
    assert parse_time("1508098860") == parse_time("1508098860000") == 1508098860.0
    assert parse_time("2017-10-15 20:21:00+00:00") == 1508098860.0
    assert parse_hashtags('[{"tag": "A"}, "B"]') == ["A", "B"]
    assert parse_hashtags("#a #b;c") == ["a", "b", "c"]

"""twarc2 (Twitter API v2) files become native events; checked on real twarc2 output
(tests/data/twitter-v2, see SOURCE.txt) with expectations read independently with json."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from pipeline.events import validate
from pipeline.formats import twitter_v2
from pipeline.geocode import country_of
from pipeline.replay import ReplayStats, _file_lines, detect

DATA = Path(__file__).resolve().parents[1] / "data" / "twitter-v2"


def lines(name: str) -> list[bytes]:
    return [x for x in gzip.decompress((DATA / f"{name}.jsonl.gz").read_bytes()).split(b"\n") if x]


def events(name: str) -> list[dict]:
    return [orjson.loads(e) for line in lines(name) for e in twitter_v2.convert(line)]


def raw_tweets(name: str) -> list[dict]:
    out = []
    for line in lines(name):
        data = json.loads(line)["data"]
        out.extend(data if isinstance(data, list) else [data])
    return out


@pytest.mark.parametrize(
    "name", ["twarc-csv_brexit", "twarc-csv_kpop", "twarc-csv_withheld", "twarc-hashtags_tweets1"]
)
def test_every_tweet_becomes_a_valid_event_with_its_hashtags_time_and_kind(name):
    tweets, got = raw_tweets(name), events(name)
    assert len(got) == len(tweets) > 0
    for tweet, event in zip(tweets, got, strict=True):
        assert validate(event) is None
        assert event["id"] == tweet["id"] and event["platform"] == "twitter"
        created = datetime.strptime(tweet["created_at"], "%Y-%m-%dT%H:%M:%S.%f%z")
        assert event["ts"] == created.timestamp()
        tags = [h["tag"] for h in tweet.get("entities", {}).get("hashtags", [])]
        assert event["hashtags"] == tags
        refs = {r["type"]: r["id"] for r in tweet.get("referenced_tweets", [])}
        if "retweeted" in refs:
            assert (event["kind"], event["parent"]) == ("repost", refs["retweeted"])
        elif not refs:
            assert (event["kind"], event["parent"]) == ("post", None)


def test_retweets_of_the_hashtags_file():
    kinds = Counter(e["kind"] for e in events("twarc-hashtags_tweets1"))
    retweets = sum(
        any(r["type"] == "retweeted" for r in t.get("referenced_tweets", []))
        for t in raw_tweets("twarc-hashtags_tweets1")
    )
    assert retweets == 242 and kinds["repost"] >= retweets


def test_region_comes_from_the_place_then_the_profile_location():
    good = lines("twarc-csv_streaming_output_with_error")[:-1]
    for line in good:
        page = json.loads(line)
        (event,) = [orjson.loads(e) for e in twitter_v2.convert(line)]
        places = {p["id"]: p for p in page["includes"].get("places", [])}
        place = places.get((page["data"].get("geo") or {}).get("place_id"))
        if place:
            assert event["region"] == place["country_code"]
    # No place in this file: regions come from profile locations, ZZ when there is none.
    page = json.loads(lines("twarc-csv_brexit")[0])
    location = {u["id"]: u.get("location") for u in page["includes"]["users"]}
    got = events("twarc-csv_brexit")
    for tweet, event in zip(page["data"], got, strict=True):
        assert event["region"] == (country_of(location.get(tweet["author_id"])) or "ZZ")
    assert Counter(e["region"] for e in got)["GB"] > 20


def test_the_truncated_last_line_is_an_error_not_a_crash():
    *good, broken = lines("twarc-csv_streaming_output_with_error")
    assert all(twitter_v2.convert(line) for line in good)
    with pytest.raises(twitter_v2.ConvertError, match="not JSON"):
        twitter_v2.convert(broken)
    with pytest.raises(twitter_v2.ConvertError, match="no tweets"):
        twitter_v2.convert(lines("twarc-csv_counts")[0])


def test_flattened_tweets_convert_like_pages():
    page = json.loads(lines("twarc-csv_streaming_output_with_error")[0])
    tweet = dict(page["data"])
    tweet["author"] = next(u for u in page["includes"]["users"] if u["id"] == tweet["author_id"])
    tweet["geo"] = {**tweet.get("geo", {}), "place": page["includes"]["places"][0]}
    assert twitter_v2.looks_like(tweet)
    flat = orjson.loads(twitter_v2.convert(orjson.dumps(tweet))[0])
    assert flat == orjson.loads(twitter_v2.convert(orjson.dumps(page))[0])


def test_replay_reads_twarc_files_reporting_bad_lines(tmp_path):
    paths = [
        DATA / "twarc-csv_kpop.jsonl.gz",
        DATA / "twarc-csv_streaming_output_with_error.jsonl.gz",
    ]
    stats = ReplayStats()
    out = list(_file_lines(paths, stats, "auto"))
    assert len(out) == 100 + 7
    assert (
        stats.skipped == 1
        and "twarc-csv_streaming_output_with_error.jsonl.gz:8: not JSON" in (stats.problems[0])
    )
    assert detect(lines("twarc-csv_kpop")[0]) == "twitter-v2"
    assert detect(b'{"id": "a", "ts": 1}') == "native"


@pytest.mark.parametrize(
    ("text", "region"),
    [
        ("Brussels, Belgium", "BE"),
        ("Northamptonshire, UK", "GB"),
        ("Scotland", "GB"),
        ("Sacramento, CA", "US"),
        ("Toronto", "CA"),
        ("Madrid 🇪🇸", "ES"),
        ("Lagos, Nigeria", "NG"),
        ("Plague Island", None),
        ("he/him", None),
        ("", None),
        (None, None),
    ],
)
def test_profile_locations(text, region):
    assert country_of(text) == region

"""For every replay format: what a live worker exports after `spread replay` equals what
`spread analyze` computes offline from the same files (counts, regions, first-seen, rates)."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from tests.integration.conftest import SAMPLE, replay, run_cli, wait_for_signals
from tests.integration.test_end_to_end import by_label, single
from tests.unit.test_formats import (
    JETSTREAM_LIKE,
    JETSTREAM_POST,
    MASTODON,
    MASTODON_BOOST,
    V1,
    V1_LONG_REPLY,
    V1_RETWEET,
)

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[1] / "data" / "twitter-v2"


def jsonl(path: Path, *objects: dict) -> Path:
    path.write_bytes(b"\n".join(orjson.dumps(o) for o in objects) + b"\n")
    return path


def files_for(fmt: str, tmp: Path) -> list[Path]:
    if fmt == "native":
        return [SAMPLE]
    if fmt == "twitter-v2":
        names = ("twarc-csv_kpop", "twarc-csv_streaming_output_with_error", "twarc-csv_withheld")
        return [DATA / f"{n}.jsonl.gz" for n in names]
    if fmt == "twitter-v1":
        return [jsonl(tmp / "v1.jsonl", V1, V1_RETWEET, V1_LONG_REPLY)]
    if fmt == "mastodon":
        return [jsonl(tmp / "m.jsonl", MASTODON, MASTODON_BOOST, {**MASTODON, "id": "111"})]
    if fmt == "bluesky":
        return [jsonl(tmp / "b.jsonl", JETSTREAM_POST, JETSTREAM_LIKE)]
    csv = tmp / "dump.csv"
    csv.write_text(
        "id,created_at,text,location\n"
        '1,2017-10-15T20:21:00Z,"#MeToo and #YoTambien",Madrid\n'
        '2,2017-10-15T20:25:00Z,"#metoo again",Paris\n'
        "3,2017-10-15T21:25:00Z,#BalanceTonPorc,FR\n"
    )
    return [csv]


@pytest.mark.parametrize(
    "fmt", ["native", "twitter-v2", "twitter-v1", "mastodon", "bluesky", "csv"]
)
def test_live_worker_equals_offline_analysis(broker, make_worker, tmp_path, fmt):
    files = [str(p) for p in files_for(fmt, tmp_path)]
    # R_t with the same configured generation interval on both sides: a learned one depends
    # on the order partitions are read in (pipeline.virality.parents).
    interval = ("--generation-interval", "gamma:30:0.6")
    result = run_cli("analyze", "--json", *interval, *files)
    assert result.returncode == 0, result.stderr.decode()
    offline = json.loads(result.stdout)
    expected_events = offline["events"]["accepted"] + sum(offline["events"]["rejected"].values())
    tags = offline["hashtags"]
    assert tags, "the files carry hashtags"

    worker = make_worker(extra_args=("--max-hashtags", "0", *interval)).start()
    replay(broker, *files)

    def done():
        m = worker.scrape()
        read = sum(by_label(m, "spread_events_total", "outcome").values())
        total = sum(t["posts"] for t in tags.values())
        return (
            m
            if read == expected_events and single(m, "spread_hashtag_posts_sum") == total
            else None
        )

    m = wait_for_signals(done, 60, "the worker to count the replay and compute its signals")
    assert by_label(m, "hashtag_posts_total", "hashtag") == {t: v["posts"] for t, v in tags.items()}
    assert by_label(m, "hashtag_region_posts_total", "hashtag", "region") == {
        (t, r): n for t, v in tags.items() for r, n in v["regions"].items()
    }
    assert by_label(m, "hashtag_region_first_seen_timestamp_seconds", "hashtag", "region") == (
        pytest.approx({(t, r): ts for t, v in tags.items() for r, ts in v["first_seen"].items()})
    )
    assert by_label(m, "hashtag_posts_per_minute", "hashtag", "window") == pytest.approx(
        {(t, w): x for t, v in tags.items() for w, x in v["posts_per_minute"].items()}
    )
    assert by_label(m, "hashtag_growth_ratio", "hashtag") == pytest.approx(
        {t: v["growth_ratio"] for t, v in tags.items() if v["growth_ratio"] is not None}
    )
    assert by_label(m, "hashtag_doubling_time_seconds", "hashtag") == pytest.approx(
        {
            t: float(v["doubling_time_seconds"])  # "+Inf" when not growing
            for t, v in tags.items()
            if v["growth_ratio"] is not None
        }
    )
    assert by_label(m, "hashtag_trend_score", "hashtag") == pytest.approx(
        {t: v["trend_score"] for t, v in tags.items()}
    )
    assert by_label(m, "hashtag_region_posts_per_minute", "hashtag", "region", "window") == (
        pytest.approx(
            {
                (t, r, w): x
                for t, v in tags.items()
                for w, by_region in v["region_posts_per_minute"].items()
                for r, x in by_region.items()
            }
        )
    )
    # Unique users: live unions of per-batch sketches, offline one sketch per tag.
    assert by_label(m, "hashtag_unique_users", "hashtag") == pytest.approx(
        {t: v["unique_users"] for t, v in tags.items()}, rel=0.02
    )
    rt = {t: v["reproduction_number"] for t, v in tags.items() if v["reproduction_number"]}
    if fmt == "native":
        assert rt, "the sample has enough children for R_t"
    for name in ("", "_lower", "_upper"):
        assert by_label(m, f"hashtag_reproduction_number{name}", "hashtag") == pytest.approx(
            {t: e[(name or "_mean")[1:]] for t, e in rt.items()}
        )
    assert single(m, "spread_generation_interval_mean_seconds") == pytest.approx(
        offline["generation_interval"]["mean_seconds"]
    )
    # The movement (metoo and its language variants, each event once) agrees too.
    moves = offline["movements"]
    if fmt in ("native", "csv"):
        assert moves["metoo"]["posts"] > 0, "these files carry the movement"
    assert by_label(m, "movement_posts_total", "movement") == {
        name: v["posts"] for name, v in moves.items()
    }
    assert by_label(m, "movement_region_posts_total", "movement", "region") == {
        (name, r): n for name, v in moves.items() for r, n in v["regions"].items()
    }
    assert by_label(m, "movement_region_first_seen_timestamp_seconds", "movement", "region") == (
        pytest.approx({(t, r): ts for t, v in moves.items() for r, ts in v["first_seen"].items()})
    )
    assert by_label(m, "movement_posts_per_minute", "movement", "window") == pytest.approx(
        {(t, w): x for t, v in moves.items() for w, x in v["posts_per_minute"].items()}
    )
    assert by_label(m, "movement_trend_score", "movement") == pytest.approx(
        {t: v["trend_score"] for t, v in moves.items()}
    )
    assert by_label(m, "movement_reproduction_number", "movement") == pytest.approx(
        {t: v["reproduction_number"]["mean"] for t, v in moves.items() if v["reproduction_number"]}
    )
    rejected = {k: v for k, v in by_label(m, "spread_events_rejected_total", "reason").items() if v}
    assert rejected == offline["events"]["rejected"]

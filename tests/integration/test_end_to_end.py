"""The whole pipeline on the embedded broker: replay → worker → /metrics == ground truth."""

from __future__ import annotations

import gzip
import json
import signal
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from tests.groundtruth import Truth, compute, norm_tag
from tests.integration.conftest import (
    SAMPLE,
    Metrics,
    parse_metrics,
    replay,
    run_cli,
    wait_for,
    wait_for_signals,
)

pytestmark = pytest.mark.integration

EDGE_LINES = [
    # Spellings of one tag, in one post and across posts; counted once per post.
    {
        "id": "e1",
        "ts": 1508200000.25,
        "region": "us",
        "hashtags": ["#MeToo", "METOO", "ＭｅＴｏｏ"],
    },
    {"id": "e2", "ts": 1508200059.999, "region": "EG", "hashtags": ["#وأنا_كمان", "وأنا_كمان"]},
    {"id": "e3", "ts": 1508200060, "region": None, "hashtags": ["＃YoTambien", "#"]},
    {"id": "e4", "ts": 1508200061, "hashtags": None},
    {"id": "e5", "ts": 1508200062, "region": "Atlantis", "hashtags": ["Straße", "STRASSE"]},
    {"id": "e6", "ts": 1508100000.5, "region": "FR", "hashtags": ["balancetonporc"]},  # late
    # Invisible characters are removed: these are metoo, yotambien and "x".
    {"id": "e8", "ts": 1508200064, "hashtags": ["met\u200boo", " #YoTambien\u202c", "\u202ex\x00"]},
    # A hashtag that tries to inject a line into the exposition: escaped, counted as itself.
    {
        "id": "e7",
        "ts": 1508200063,
        "region": "US",
        "hashtags": ['x"} 1\nspread_events_total{outcome="accepted"} 999\n\\'],
    },
]
EDGE_RAW = [
    b'{"id": "bad-nan", "ts": NaN, "hashtags": ["metoo"]}',
    b'{"id": "bad-bool", "ts": true, "hashtags": ["metoo"]}',
    b'{"id": "bad-utf8", "ts": 1508200000, "hashtags": ["\xff\xfe"]}',
    b'{"id": "bad-tags", "ts": 1508200000, "hashtags": [1, 2]}',
    b"42",
    # Hostile input: every line has its own reason; none may stop the worker.
    b'{"id": "big", "ts": 1508200000, "hashtags": ["metoo"], "pad": "' + b"x" * 70_000 + b'"}',
    b"[" * 5000 + b"]" * 5000,
    json.dumps(
        {"id": "many", "ts": 1508200000, "hashtags": [f"t{i}" for i in range(150)]}
    ).encode(),
    json.dumps({"id": "long", "ts": 1508200000, "hashtags": ["ﷺ" * 10]}).encode(),  # NFKC: x18
    b'{"id": "future", "ts": 1e12, "hashtags": ["metoo"]}',
    b'{"id": "negative", "ts": -1, "hashtags": ["metoo"]}',
]


@pytest.fixture
def edge_file(tmp_path):
    path = tmp_path / "edge.jsonl"
    lines = [json.dumps(e, ensure_ascii=False).encode() for e in EDGE_LINES] + EDGE_RAW
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def single(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.get(name, {}).get(tuple(sorted(labels.items())))


def by_label(metrics: Metrics, name: str, *keys: str) -> dict:
    out = {}
    for labels, value in metrics.get(name, {}).items():
        d = dict(labels)
        out[tuple(d[k] for k in keys) if len(keys) > 1 else d[keys[0]]] = value
    return out


def processed(worker, truth: Truth):
    """The scrape once every event was read and every hashtag's total reached the truth."""
    m = worker.scrape()
    read = sum(by_label(m, "spread_events_total", "outcome").values())
    if read == truth.accepted + sum(truth.rejected.values()) and sum(
        by_label(m, "hashtag_posts_total", "hashtag").values()
    ) == sum(truth.posts.values()):
        return m
    return None


def assert_matches(m: Metrics, truth: Truth) -> None:
    assert by_label(m, "spread_events_total", "outcome") == {
        "accepted": truth.accepted,
        "rejected": sum(truth.rejected.values()),
    }
    rejected = {k: v for k, v in by_label(m, "spread_events_rejected_total", "reason").items() if v}
    assert rejected == dict(truth.rejected)
    assert single(m, "spread_watermark_timestamp_seconds") == pytest.approx(truth.watermark)
    assert by_label(m, "hashtag_posts_total", "hashtag") == dict(truth.posts)
    assert single(m, "spread_hashtag_posts_sum") == sum(truth.posts.values())
    assert by_label(m, "hashtag_region_posts_total", "hashtag", "region") == dict(
        truth.region_posts
    )
    assert by_label(m, "hashtag_region_first_seen_timestamp_seconds", "hashtag", "region") == (
        pytest.approx(truth.first_seen)
    )
    reached = {t: len({r for (tt, r) in truth.region_posts if tt == t}) for t in truth.posts}
    assert by_label(m, "hashtag_regions_reached", "hashtag") == reached
    rates = by_label(m, "hashtag_posts_per_minute", "hashtag", "window")
    expected = {
        (tag, label): truth.per_minute(tag, w)
        for tag in truth.posts
        for label, w in {"1m": 1, "15m": 15, "1h": 60}.items()
    }
    assert rates == pytest.approx(expected)
    growth = {t: truth.growth(t) for t in truth.posts}
    assert by_label(m, "hashtag_growth_ratio", "hashtag") == pytest.approx(
        {t: g for t, g in growth.items() if g is not None}
    )
    regional = {
        (tag, region, label): truth.region_per_minute(tag, region, w)
        for tag, region in truth.region_minutes
        for label, w in {"15m": 15, "1h": 60}.items()
    }
    assert by_label(
        m, "hashtag_region_posts_per_minute", "hashtag", "region", "window"
    ) == pytest.approx({k: v for k, v in regional.items() if v})
    # A sketch, not a set: within 2 % of the exact count (README "Metrics").
    assert by_label(m, "hashtag_unique_users", "hashtag") == pytest.approx(
        {t: len(truth.users[t]) for t in truth.posts}, rel=0.02
    )


def test_replay_into_running_worker_matches_ground_truth(broker, make_worker, edge_file):
    truth = compute([SAMPLE, edge_file])
    assert truth.posts["metoo"] > 1000 and len(truth.rejected) == 9  # the data exercises it
    worker = make_worker().start()
    replay(broker, str(SAMPLE), str(edge_file))
    m = wait_for_signals(lambda: processed(worker, truth), 60, "the worker to count the replay")
    assert_matches(m, truth)
    # A restricted scrape serves just the families asked for, with the same values.
    with urllib.request.urlopen(worker.url + "?name[]=spread_events_total", timeout=5) as resp:
        restricted = parse_metrics(resp.read().decode())
    assert set(restricted) == {"spread_events_total"}
    assert restricted["spread_events_total"] == m["spread_events_total"]
    # The port serves metrics, not Faust's table listings or partition routing.
    for path in ("/router/", "/table/", "/table/hashtag-totals/"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(worker.url.replace("/metrics", path), timeout=5)
        assert err.value.code == 404, path


def test_worker_started_after_paced_single_event_replay(broker, make_worker, edge_file):
    """Other speed, other partition count, one event per record, worker joins late."""
    truth = compute([edge_file, SAMPLE])
    # Event time spans ~30 h; at 200,000x that is about half a second of pacing.
    replay(
        broker,
        "--speed",
        "200000",
        "--envelope",
        "1",
        "--partitions",
        "3",
        str(edge_file),
        str(SAMPLE),
    )
    worker = make_worker(partitions=5).start()
    m = wait_for_signals(lambda: processed(worker, truth), 90, "the worker to count the replay")
    assert_matches(m, truth)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_restarted_worker_recovers_exact_totals_from_changelogs(broker, make_worker, sig):
    truth = compute([SAMPLE])
    worker = make_worker().start()
    replay(broker, "--envelope", "250", str(SAMPLE))
    before = wait_for_signals(lambda: processed(worker, truth), 60, "the worker to count it")
    assert_matches(before, truth)
    worker.stop(sig)
    worker.start()
    after = wait_for_signals(lambda: processed(worker, truth), 60, "the restart to recover")
    assert_matches(after, truth)
    # The tables came back through the bulk restore (agents/store.py), not record by record.
    assert before["spread_changelog_records_restored_total"][()] == 0
    assert after["spread_changelog_records_restored_total"][()] > 0
    # Recovered state must also keep counting new events exactly once.
    replay(broker, "--envelope", "250", str(SAMPLE))
    doubled = compute([SAMPLE, SAMPLE])
    final = wait_for_signals(lambda: processed(worker, doubled), 60, "the second replay")
    assert_matches(final, doubled)


def test_rejected_events_are_dead_lettered_with_reason(broker, make_worker, edge_file):
    """Every rejected line lands in posts-rejected, byte for byte, with its reason."""
    import asyncio

    from aiokafka import AIOKafkaConsumer

    truth = compute([SAMPLE, edge_file])
    worker = make_worker().start()
    replay(broker, str(SAMPLE), str(edge_file))
    wait_for(lambda: processed(worker, truth), 60, "the worker to count the replay")

    async def read_dead_letters(expected: int) -> list[tuple[str, bytes]]:
        consumer = AIOKafkaConsumer(
            "posts-rejected", bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest"
        )
        await consumer.start()
        out: list[tuple[str, bytes]] = []
        try:
            for _ in range(50):
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    for r in records:
                        out.append((dict(r.headers)["reason"].decode(), r.value))
                if len(out) >= expected and not batch:
                    break
        finally:
            await consumer.stop()
        return out

    dead = asyncio.run(read_dead_letters(len(truth.bad_lines)))
    assert sorted(dead) == sorted(truth.bad_lines)


def test_series_are_capped_to_the_top_hashtags_plus_always_export(broker, make_worker):
    truth = compute([SAMPLE])
    worker = make_worker(
        extra_args=(
            "--max-hashtags",
            "3",
            "--always-export",
            "#Brexit,nope",
            "--movement",
            "sport=NFL,worldseries",
        )
    )
    worker.start()
    replay(broker, str(SAMPLE))

    def counted():
        m = worker.scrape()
        read = sum(by_label(m, "spread_events_total", "outcome").values())
        done = read == truth.accepted + sum(truth.rejected.values())
        return (
            m
            if done and single(m, "spread_hashtag_posts_sum") == sum(truth.posts.values())
            else None
        )

    m = wait_for_signals(counted, 60, "the worker to count the replay and rank the hashtags")
    # The top 3 by trend score, the always-export list and the movement's tags.
    rank = sorted(truth.posts, key=lambda t: (-truth.trend(t), -truth.posts[t], t))
    exported = by_label(m, "hashtag_posts_total", "hashtag")
    assert by_label(m, "hashtag_trend_score", "hashtag") == pytest.approx(
        {t: truth.trend(t) for t in exported}
    )
    movement_tags = {"nfl", "worldseries"} & set(truth.posts)
    assert movement_tags, "the sample has the movement's tags"
    assert set(exported) == {*rank[:3], "brexit", *movement_tags}
    assert exported == {t: truth.posts[t] for t in exported}  # exact, just fewer
    assert single(m, "spread_hashtags_tracked") == len(truth.posts)
    assert single(m, "spread_hashtags_exported") == len(exported)
    assert len(exported) > 4
    regions = {tag for tag, _ in by_label(m, "hashtag_region_posts_total", "hashtag", "region")}
    assert regions == set(exported)


def test_replay_of_twarc2_files_counts_every_tweet(broker, make_worker):
    """Real Twitter API v2 files (gzip, auto-detected), one with a broken last line."""
    data = Path(__file__).resolve().parents[1] / "data" / "twitter-v2"
    files = [data / f"{n}.jsonl.gz" for n in ("twarc-csv_brexit", "twarc-hashtags_tweets1")]
    files.append(data / "twarc-csv_streaming_output_with_error.jsonl.gz")
    tweets = []
    for path in files:
        for line in gzip.decompress(path.read_bytes()).splitlines():
            try:
                page = json.loads(line)
            except ValueError:
                continue  # the broken fragment: replay skips and reports it
            tweets.extend(page["data"] if isinstance(page["data"], list) else [page["data"]])
    posts = Counter(
        tag
        for t in tweets
        for tag in {norm_tag(h["tag"]) for h in t.get("entities", {}).get("hashtags", [])}
    )
    worker = make_worker(extra_args=("--max-hashtags", "0")).start()
    result = replay(broker, *map(str, files))
    err = result.stderr.decode()
    assert "skipped 1 source lines" in err and "with_error.jsonl.gz:8: not JSON" in err

    def counted():
        m = worker.scrape()
        read = sum(by_label(m, "spread_events_total", "outcome").values())
        return (
            m
            if read == len(tweets) and single(m, "spread_hashtag_posts_sum") == sum(posts.values())
            else None
        )

    m = wait_for(counted, 60, "the worker to count the tweets")
    assert by_label(m, "hashtag_posts_total", "hashtag") == dict(posts)
    assert by_label(m, "spread_events_total", "outcome")["rejected"] == 0


def test_spread_top_ranks_hashtags_like_the_ground_truth(broker, make_worker):
    truth = compute([SAMPLE])
    worker = make_worker().start()
    replay(broker, str(SAMPLE))
    wait_for(lambda: processed(worker, truth), 60, "the worker to count the replay")
    address = worker.url.removeprefix("http://").removesuffix("/metrics")
    # The same worker twice: a hashtag seen on two targets is counted once, not twice.
    result = run_cli("top", address, "--metrics", worker.url, "--by", "rate", "--window", "1h")
    assert result.returncode == 0, result.stderr.decode()
    header, *lines = result.stdout.decode().splitlines()
    assert header.split() == [
        "hashtag",
        "/min",
        "1h",
        "posts",
        "growth",
        "R_t",
        "trend",
        "regions",
        "users",
    ]
    rows = [line.split() for line in lines]
    best = sorted(truth.posts, key=lambda t: (-truth.per_minute(t, 60), -truth.posts[t], t))
    assert [r[0] for r in rows] == best[:20]
    assert [float(r[2].replace(",", "")) for r in rows] == [truth.posts[t] for t in best[:20]]
    # By trend score (the default, as the exporter's cap), five rows.
    result = run_cli("top", worker.url, "--n", "5")
    rows = [line.split() for line in result.stdout.decode().splitlines()[1:]]
    by_trend = sorted(truth.posts, key=lambda t: (-truth.trend(t), -truth.posts[t], t))[:5]
    assert [r[0] for r in rows] == by_trend
    assert [float(r[5]) for r in rows] == pytest.approx(
        [truth.trend(t) for t in by_trend], abs=0.05
    )
    # One region: only hashtags posted there, by their posts there.
    result = run_cli("top", worker.url, "--region", "fr")
    header, *lines = result.stdout.decode().splitlines()
    assert header.split()[:4] == ["hashtag", "posts", "in", "FR"]
    in_fr = {t: n for (t, r), n in truth.region_posts.items() if r == "FR"}
    rows = [line.split() for line in lines]
    assert [r[0] for r in rows] == sorted(in_fr, key=lambda t: (-in_fr[t], -truth.posts[t], t))
    assert [int(r[1].replace(",", "")) for r in rows] == sorted(in_fr.values(), reverse=True)
    bad = run_cli("top", worker.url, "--region", "Francia")
    assert bad.returncode == 2 and b"--region" in bad.stderr


def test_no_virality_counts_exactly_without_the_signals(broker, make_worker):
    truth = compute([SAMPLE])
    worker = make_worker(extra_args=("--no-virality", "--max-hashtags", "5")).start()
    replay(broker, str(SAMPLE))

    def counted():
        m = worker.scrape()
        read = sum(by_label(m, "spread_events_total", "outcome").values())
        done = read == truth.accepted + sum(truth.rejected.values())
        return m if done and single(m, "spread_hashtag_posts_sum") == truth.posts.total() else None

    m = wait_for_signals(counted, 60, "the worker to count the replay and rank the hashtags")
    exported = by_label(m, "hashtag_posts_total", "hashtag")
    assert exported == {t: truth.posts[t] for t in exported}
    # The cap ranks by the 15m rate, and no movement's tags are added.
    rank = sorted(truth.posts, key=lambda t: (-truth.per_minute(t, 15), -truth.posts[t], t))
    assert set(exported) == set(rank[:5])
    for name in ("hashtag_trend_score", "hashtag_reproduction_number", "hashtag_unique_users"):
        assert name not in m, name
    assert not any(name.startswith("movement_") for name in m)


def test_a_long_tail_of_distinct_hashtags_in_one_batch(broker, make_worker, tmp_path):
    """50,000 distinct hashtags reach stage 1 in one batch: one partition's delta is then
    megabytes, more than a producer may send in one record, so it goes as several (the worker
    used to crash here). Counts stay exact and the cap still exports the top 200."""
    lines = [
        json.dumps(
            {"id": str(i), "ts": 1508097600 + i, "region": "US", "user": f"u{i % 97}",
             "hashtags": [f"tail{5 * i + j:06d}" for j in range(5)] + ["metoo"] * (i % 2)}
        )
        for i in range(10_000)
    ]  # fmt: skip
    path = tmp_path / "tail.jsonl"
    path.write_text("\n".join(lines) + "\n")
    replay(broker, "--partitions", "1", str(path))  # all in the topic before the worker reads
    worker = make_worker(partitions=1).start()

    def counted():
        m = worker.scrape()
        done = by_label(m, "spread_events_total", "outcome").get("accepted") == len(lines)
        return m if done and single(m, "spread_hashtag_posts_sum") == 55_000 else None

    m = wait_for_signals(counted, 120, "the worker to count the long tail and rank it")
    assert single(m, "spread_hashtags_tracked") == 50_001
    exported = by_label(m, "hashtag_posts_total", "hashtag")
    assert exported["metoo"] == 5_000
    # 200 by rank, plus the movement's tag; the newest 30 minutes hold 9,000 tags with one
    # post each, all scoring alike: more than the ranking's budget, which it says.
    assert len(exported) == 201 and set(exported.values()) == {1, 5_000}
    assert single(m, "spread_ranking_exact") == 0
    worker_log = "".join(p.read_text() for p in tmp_path.glob("worker-*.log"))
    assert "Crashed" not in worker_log and "MessageSizeTooLarge" not in worker_log


def test_two_app_ids_on_one_broker_each_count_everything(broker, make_worker):
    """Each app id has its own deltas topic, as it has its own changelogs. When the topic was
    shared, a second app's stage 2 read the first app's deltas before its own (and then
    skipped its own for the same records): counted by the first app's rules, here without
    users (``--no-virality``), so the second app's unique users came out empty."""
    truth = compute([SAMPLE])
    counts_only = make_worker(app_id="app-counts", extra_args=("--no-virality",)).start()
    replay(broker, str(SAMPLE))
    counted = wait_for(lambda: processed(counts_only, truth), 60, "app-counts to count it")
    assert by_label(counted, "hashtag_posts_total", "hashtag") == dict(truth.posts)
    full = make_worker(app_id="app-full").start()
    m = wait_for_signals(lambda: processed(full, truth), 60, "app-full to count the replay")
    assert_matches(m, truth)  # unique users included: within 2 %

import orjson

from pipeline import deltas as wire
from pipeline.aggregate import minute_of, summarise


def env(*events) -> bytes:
    return b"\n".join(e if isinstance(e, bytes) else orjson.dumps(e) for e in events)


def test_summarise_counts_once_per_distinct_tag_by_region_and_minute():
    s = summarise(
        env(
            {"id": "1", "ts": 120.5, "region": "fr", "hashtags": ["#MeToo", "METOO", "x"]},
            {"id": "2", "ts": 61.0, "region": "XX", "hashtags": ["ＭｅＴｏｏ"]},
            {"id": "3", "ts": 179.0, "hashtags": []},
            b"{broken",
            {"id": 4, "ts": 1},
        )
    )
    assert s.accepted == 3
    assert [r for r, _ in s.rejected] == ["invalid_json", "bad_id"]
    assert s.rejected[0][1] == b"{broken"
    assert s.max_ts == 179.0
    posts, regions, minutes, first = s.tags["metoo"]
    assert posts == 2
    assert regions == {"FR": 1, "ZZ": 1}
    assert minutes == {120: 1, 60: 1}
    assert first == {"FR": 120.5, "ZZ": 61.0}
    assert s.tags["x"][0] == 1


def test_minute_buckets_are_epoch_aligned_and_closed_open():
    assert minute_of(59.999) == 0
    assert minute_of(60.0) == 60
    assert minute_of(-0.5) == -60


def test_partition_matches_kafka_default_partitioner():
    # Reference values of Kafka's murmur2 partitioner (Java client, 8 partitions).
    from aiokafka.partitioner import DefaultPartitioner

    for tag in ["metoo", "balancetonporc", "وأنا_كمان"]:
        key = tag.encode()
        assert wire.partition_for(tag, 8) == DefaultPartitioner()(key, list(range(8)), [])


def test_delta_roundtrip_and_split():
    s = summarise(env({"id": "1", "ts": 60, "region": "US", "hashtags": ["a", "b", "c"]}))
    parts = wire.split_by_partition(s.tags, 4)
    assert sorted(t for tags in parts.values() for t in tags) == ["a", "b", "c"]
    for p, tags in parts.items():
        assert all(wire.partition_for(t, 4) == p for t in tags)
    entries = [wire.entry(3, 17, s.max_ts, s.tags), wire.entry(3, 18, None, {})]
    decoded = wire.decode(wire.encode(entries))
    assert [e[:3] for e in decoded] == [[3, 17, 60], [3, 18, None]]
    assert decoded[0][3]["a"] == [1, {"US": 1}, [[60, 1]], {"US": 60}]


def test_apply_total_is_idempotent_per_source_partition():
    v1 = wire.apply_total(None, 0, 5, 2, {"US": 2}, {"US": 10.0})
    assert v1 == {"n": 2, "r": {"US": 2}, "f": {"US": 10.0}, "m": {"0": 5}}
    assert wire.apply_total(v1, 0, 5, 2, {"US": 2}, {"US": 10.0}) is None  # redelivered
    assert wire.apply_total(v1, 0, 4, 2, {"US": 2}, {"US": 10.0}) is None  # older
    v2 = wire.apply_total(v1, 1, 0, 1, {"FR": 1}, {"FR": 5.0})  # other partition, own mark
    assert v2["n"] == 3 and v2["r"] == {"US": 2, "FR": 1} and v2["m"] == {"0": 5, "1": 0}
    v3 = wire.apply_total(v2, 0, 6, 1, {"US": 1}, {"US": 3.0})
    assert v3["n"] == 4 and v3["f"]["US"] == 3.0  # earlier first-seen wins
    assert v1 == {"n": 2, "r": {"US": 2}, "f": {"US": 10.0}, "m": {"0": 5}}  # not mutated


def test_apply_bucket_is_idempotent():
    b = wire.apply_bucket(None, 2, 9, 3)
    assert b == [3, {"2": 9}]
    assert wire.apply_bucket(b, 2, 9, 3) is None
    assert wire.apply_bucket(b, 2, 10, 1) == [4, {"2": 10}]

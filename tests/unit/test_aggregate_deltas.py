import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import aggregate
from pipeline import deltas as wire
from pipeline.aggregate import minute_of, summarise
from pipeline.virality import movements, users


def env(*events) -> bytes:
    return b"\n".join(e if isinstance(e, bytes) else orjson.dumps(e) for e in events)


def test_summarise_counts_once_per_distinct_tag_by_region_and_minute():
    s = summarise(
        env(
            {"id": "1", "ts": 120.5, "region": "fr", "hashtags": ["#MeToo", "METOO", "x"]},
            {
                "id": "2",
                "ts": 61.0,
                "region": "XX",
                "hashtags": ["ＭｅＴｏｏ"],
                "parent": "1",
                "user": "ann",
            },
            {"id": "5", "ts": 62.0, "hashtags": ["x"], "parent": "", "user": 7},  # no parent, user
            {"id": "3", "ts": 179.0, "hashtags": []},
            b"{broken",
            {"id": 4, "ts": 1},
        )
    )
    assert s.accepted == 4
    assert [r for r, _ in s.rejected] == ["invalid_json", "bad_id"]
    assert s.rejected[0][1] == b"{broken"
    assert s.max_ts == 179.0
    posts, regions, minutes, first, users = s.tags["metoo"]
    assert posts == 2
    assert regions == {"FR": 1, "ZZ": 1}
    # Each minute: its posts, those naming a parent, its posts by region.
    assert minutes == {"0": {"120": [1, 0, {"FR": 1}], "60": [1, 1, {"ZZ": 1}]}}
    assert first == {"FR": 120.5, "ZZ": 61.0}
    assert users == {"ann"}  # only non-empty strings are users
    x = s.tags["x"]
    assert x[0] == 2
    assert dict(aggregate.minutes(x[2])) == {120: [1, 0, {"FR": 1}], 60: [1, 0, {"ZZ": 1}]}
    assert x[4] == set()


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
    s = summarise(
        env(
            {"id": "1", "ts": 60, "region": "US", "hashtags": ["a", "b", "c"], "user": "u1"},
            {"id": "2", "ts": 61, "region": "US", "hashtags": ["c"], "user": "u2"},
        )
    )
    parts = wire.split_by_partition(s.tags, 4)
    assert sorted(t for tags in parts.values() for t in tags) == ["a", "b", "c"]
    for p, tags in parts.items():
        assert all(wire.partition_for(t, 4) == p for t in tags)
    entries = [
        wire.entry([(3, 17, 20), (5, 2, 9)], s.max_ts, s.tags),
        wire.entry([(3, 21, 21)], None, {}),
    ]
    decoded = wire.decode(wire.encode(entries))
    assert [e[:2] for e in decoded] == [[[[3, 17, 20], [5, 2, 9]], 61], [[[3, 21, 21]], None]]
    assert decoded[0][2]["a"][:4] == [1, {"US": 1}, {"0": {"60": [1, 0, {"US": 1}]}}, {"US": 60}]
    # A few users travel as their ids; more as a HyperLogLog sketch (base64).
    assert decoded[0][2]["a"][4] == ["u1"]
    assert sorted(decoded[0][2]["c"][4]) == ["u1", "u2"]
    many = users.pack({f"u{i}" for i in range(users.SMALL + 1)})
    assert isinstance(many, str) and round(users.estimate(many)) == users.SMALL + 1


def test_summarise_into_accumulates_records():
    acc = {}
    summarise(env({"id": "1", "ts": 60, "region": "US", "hashtags": ["a"]}), into=acc)
    second = summarise(env({"id": "2", "ts": 200, "region": "FR", "hashtags": ["A"]}), into=acc)
    assert second.tags is acc
    assert acc["a"] == [
        2,
        {"US": 1, "FR": 1},
        {"0": {"60": [1, 0, {"US": 1}], "180": [1, 0, {"FR": 1}]}},
        {"US": 60, "FR": 200},
        set(),
    ]


def test_check_ranges_against_marks():
    marks = {"0": 10, "1": 3}
    assert wire.check(marks, wire.marked([[0, 11, 20]])) == wire.APPLY
    assert wire.check(marks, wire.marked([[0, 5, 10]])) == wire.SKIP
    assert wire.check(marks, wire.marked([[0, 10, 10]])) == wire.SKIP  # redelivered single record
    assert wire.check(marks, wire.marked([[0, 8, 12]])) == wire.OVERLAP
    assert (
        wire.check(marks, wire.marked([[2, 0, 0]])) == wire.APPLY
    )  # other source partition, own mark
    assert wire.check({}, wire.marked([[0, 0, 0]])) == wire.APPLY
    # A batch's entry spans source partitions: all new, or all applied, never a mix.
    assert wire.check(marks, wire.marked([[0, 11, 20], [1, 4, 9], [2, 0, 5]])) == wire.APPLY
    assert wire.check(marks, wire.marked([[0, 1, 10], [1, 0, 3]])) == wire.SKIP
    assert wire.check(marks, wire.marked([[0, 11, 20], [1, 0, 3]])) == wire.OVERLAP


def test_merge_total_in_place():
    v = wire.new_total()
    wire.merge_total(v, wire.marked([[0, 0, 5]]), 2, {"US": 2}, {"US": 10.0})
    wire.merge_total(v, wire.marked([[1, 0, 0], [2, 4, 7]]), 1, {"FR": 1}, {"FR": 5.0})
    wire.merge_total(v, wire.marked([[0, 6, 6]]), 1, {"US": 1}, {"US": 3.0})
    assert v == {
        "n": 4,
        "r": {"US": 3, "FR": 1},
        "f": {"US": 3.0, "FR": 5.0},
        "m": {"0": 6, "1": 0, "2": 7},
    }
    copy = wire.copy_total(v)
    wire.merge_total(copy, wire.marked([[0, 7, 7]]), 1, {"ZZ": 1}, {})
    assert v["n"] == 4 and "ZZ" not in v["r"] and v["m"]["0"] == 6  # the copy is independent


def test_a_row_copy_shares_nothing_it_changes():
    stored = [{"2": 3}, {"60": [5, 1, {"US": 5}]}]
    row = wire.new_row(stored)
    wire.advance_marks(row[0], wire.marked([[2, 4, 4], [4, 0, 1]]))
    bucket = [3, 0, {"FR": 3}]
    assert wire.add_minutes(row[1], {"60": [2, 1, {"US": 1, "FR": 1}], "120": bucket}) == 1
    assert row == [
        {"2": 4, "4": 1},
        {"60": [7, 2, {"US": 6, "FR": 1}], "120": [3, 0, {"FR": 3}]},
    ]
    assert row[1]["120"] is bucket  # handed over, not copied
    assert stored == [{"2": 3}, {"60": [5, 1, {"US": 5}]}]  # untouched
    assert wire.add_minutes(row[1], {"120": [1, 1, {}]}) == 0
    assert row[1]["120"] == [4, 1, {"FR": 3}] and bucket == [3, 0, {"FR": 3}]
    assert wire.new_row(None) == [{}, {}]


def test_hours_group_minutes_as_rows_and_old_deltas_upgrade():
    s = summarise(
        env(
            {"id": "1", "ts": 3599, "region": "US", "hashtags": ["a"], "parent": "x"},
            {"id": "2", "ts": 3600, "region": "FR", "hashtags": ["a"]},
            {"id": "3", "ts": 3650, "region": "US", "hashtags": ["a"], "parent": "x"},
            {"id": "4", "ts": 3655, "region": "FR", "hashtags": ["a"]},
        )
    )
    a = s.tags["a"]
    hours = {"0": {"3540": [1, 1, {"US": 1}]}, "3600": {"3600": [3, 1, {"FR": 2, "US": 1}]}}
    assert a[2] == hours
    flat = dict(aggregate.minutes(a[2]))
    assert flat == {3540: [1, 1, {"US": 1}], 3600: [3, 1, {"FR": 2, "US": 1}]}
    assert wire.by_hour(flat) == hours
    # The same delta as written before 2026-12-01: minutes as lists, seven fields.
    legacy = [
        a[0], a[1], [[m, b[0]] for m, b in flat.items()], a[3],
        [[m, b[1]] for m, b in flat.items() if b[1]], ["u1"],
        [[m, r, n] for m, b in flat.items() for r, n in b[2].items()],
    ]  # fmt: skip
    assert wire.upgrade(legacy) == [4, a[1], hours, a[3], ["u1"]]
    # Four fields (before children and users): posts only, no regions per minute.
    assert wire.upgrade(legacy[:4]) == [
        4, a[1], {"0": {"3540": [1, 0, {}]}, "3600": {"3600": [3, 0, {}]}}, a[3], [],
    ]  # fmt: skip


def test_late_events_count_in_totals_but_not_in_minute_buckets():
    record = env(
        {"id": "1", "ts": 1000.0, "region": "FR", "hashtags": ["a"], "user": "x"},
        {"id": "2", "ts": 400.0, "region": "US", "hashtags": ["a", "b"], "parent": "1"},
    )
    s = summarise(record, envelope=True, late_before=500.0)
    assert s.accepted == 2 and s.late == 1
    posts, regions, minutes, first, users = s.tags["a"]
    assert posts == 2 and regions == {"FR": 1, "US": 1} and first == {"FR": 1000.0, "US": 400.0}
    assert minutes == {"0": {"960": [1, 0, {"FR": 1}]}}  # the late reply is not in a minute
    assert users == {"x"}  # a late event still counts as a user
    assert s.tags["b"][:3] == [1, {"US": 1}, {}]
    assert summarise(record, envelope=True).late == 0


def test_large_deltas_are_split_into_records_that_fit():
    events = [
        {"id": str(i), "ts": 60 + i % 600, "region": "US", "hashtags": [f"tail{i}", "big"]}
        for i in range(3000)
    ]
    s = summarise(env(*events))
    entries = [wire.entry([(0, 5, 9)], s.max_ts, s.tags), wire.entry([(1, 0, 0)], 61.0, {})]
    whole = wire.decode(wire.encode(entries))
    records = wire.encode_records(entries, max_bytes=16 * 1024)
    assert len(records) > 5 and all(len(r) <= 16 * 1024 for r in records)
    parts = [e for r in records for e in wire.decode(r)]
    # Every part keeps its entry's ranges and watermark; every hashtag is in exactly one part.
    assert {(str(e[0]), e[1]) for e in parts} == {(str(e[0]), e[1]) for e in whole}
    tags = [t for e in parts for t in e[2]]
    assert sorted(tags) == sorted(t for e in whole for t in e[2])
    assert {t: d for e in parts for t, d in e[2].items()} == whole[0][2]
    assert wire.encode_records(entries) == [wire.encode(entries)]  # small enough: one record


ONE_TAG = st.one_of(
    st.sampled_from(["#MeToo", "metoo", "MoiAussi", "#", " ", "", "x" * 141, "Ｘ", "a\u200b"]),
    st.text(max_size=6),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(ONE_TAG, st.sampled_from(["US", "fr", None, "XX"])), max_size=20))
def test_a_post_with_one_hashtag_counts_as_one_with_it_twice(posts):
    """Posts with one hashtag take a shortcut (a memo of its normalised form and movement
    key); the same posts with the hashtag repeated take the general path, and count the same.
    """

    def record(times: int) -> bytes:
        return env(
            *[
                {
                    "id": str(i),
                    "ts": 30.0 * i,
                    "region": region,
                    "hashtags": [tag] * times,
                    "user": f"u{i % 3}",
                    "parent": "0" if i % 2 else None,
                }
                for i, (tag, region) in enumerate(posts)
            ]
        )

    for index in (None, movements.index({"metoo": ("metoo", "moiaussi")}), {"metoo": "#metoo"}):
        one, twice = (summarise(record(n), now=1e6, movements=index) for n in (1, 2))
        assert [r for r, _ in one.rejected] == [r for r, _ in twice.rejected]
        assert (one.accepted, one.max_ts, one.tags) == (twice.accepted, twice.max_ts, twice.tags)

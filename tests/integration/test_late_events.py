"""Late and out-of-order events (README "Late events"), sent one record each by a real producer
to a real broker in a chosen order: within the grace period they land in their minute's
window; past it they are counted in spread_events_late_total and in the totals, not in the
windows."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from tests.integration.conftest import wait_for_signals
from tests.integration.test_end_to_end import by_label, single

pytestmark = pytest.mark.integration

GRACE = 600.0
T0 = 1_508_097_600.0  # 2017-10-15 20:00 UTC, a minute boundary


def event(i: int, ts: float, region: str = "US") -> dict:
    return {"id": f"e{i}", "ts": ts, "region": region, "hashtags": ["MeToo"], "user": f"u{i}"}


# In sending order. The watermark (newest event time read so far) moves with the in-order
# events; the late ones come after events more than GRACE newer than themselves.
SENT = [
    event(0, T0 + 5),
    event(1, T0 + 1800),  # watermark T0 + 1800
    event(2, T0 + 1500, "FR"),  # 300 s behind: within grace, in its window
    event(3, T0 + 30, "GB"),  # 1770 s behind: late
    event(4, T0 + 1810),
    event(5, T0 + 900, "GB"),  # 910 s behind: late
    event(6, T0 + 1300),  # 510 s behind: in its window
]


def expected() -> tuple[int, dict[int, int]]:
    """Late count and per-minute window counts, by the README's rule, independently."""
    watermark = None
    late = 0
    minutes: dict[int, int] = {}
    for e in SENT:
        if watermark is not None and e["ts"] < watermark - GRACE:
            late += 1
        else:
            m = int(e["ts"] // 60 * 60)
            minutes[m] = minutes.get(m, 0) + 1
        watermark = e["ts"] if watermark is None else max(watermark, e["ts"])
    return late, minutes


async def send(bootstrap: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for e in SENT:  # one at a time, in order, to one partition
            await producer.send_and_wait("posts", orjson.dumps(e), partition=0)
    finally:
        await producer.stop()


def test_late_events_count_in_totals_not_in_windows(broker, make_worker):
    late, minutes = expected()
    assert late == 2 and sum(minutes.values()) == len(SENT) - 2  # the data exercises it
    worker = make_worker(partitions=1, extra_args=("--grace-seconds", str(GRACE))).start()
    asyncio.run(send(broker.bootstrap))

    def counted():
        m = worker.scrape()
        done = by_label(m, "spread_events_total", "outcome").get("accepted") == len(SENT)
        return m if done and single(m, "spread_hashtag_posts_sum") == len(SENT) else None

    m = wait_for_signals(counted, 60, "the worker to count the events and compute signals")
    assert single(m, "spread_events_late_total") == late
    # Totals, regions and first-seen times include late events.
    assert by_label(m, "hashtag_posts_total", "hashtag") == {"metoo": len(SENT)}
    assert by_label(m, "hashtag_region_posts_total", "hashtag", "region") == {
        ("metoo", "US"): 4,
        ("metoo", "FR"): 1,
        ("metoo", "GB"): 2,
    }
    assert by_label(m, "hashtag_region_first_seen_timestamp_seconds", "hashtag", "region")[
        ("metoo", "GB")
    ] == pytest.approx(T0 + 30)
    assert by_label(m, "hashtag_unique_users", "hashtag")["metoo"] == pytest.approx(len(SENT))
    # The windows do not: the 1h rate at the watermark is the in-window events over 60.
    watermark = max(e["ts"] for e in SENT)
    last = int(watermark // 60 * 60)
    in_hour = sum(n for minute, n in minutes.items() if last - 59 * 60 <= minute <= last)
    rates = by_label(m, "hashtag_posts_per_minute", "hashtag", "window")
    assert rates[("metoo", "1h")] == pytest.approx(in_hour / 60)
    assert in_hour == len(SENT) - late  # every in-window event is within the hour here

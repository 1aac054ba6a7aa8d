"""Restart from scratch: how long a new worker with empty local state takes to rebuild every
table from the changelogs and export exact totals again; and how long a rebalance takes when
a second worker joins one that has counted everything.

    python -m bench.recovery [--events N]

1. One worker counts a Zipf workload (bench.workload).
2. A second worker joins it (same app id) and ``JOIN_EVENTS`` more events are sent at once:
   timed from the joiner's start until both export hashtags and their /metrics add up to
   every event and hashtag post, the new ones included: the rebalance, the restores, and
   counting again. The first keeps half its partitions; how many of its own changelog records
   Faust's recovery read again for them is reported
   (``spread_changelog_records_replayed_total``).
3. Both are stopped (the joiner first, then the first once it holds everything again); a new
   worker process with a new data directory starts on the same app id: timed from its start
   until /metrics shows every event and every hashtag post again.

Polled cheaply with ``name[]``.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

import orjson
from prometheus_client.parser import text_string_to_metric_families

from bench.worker import start_worker
from bench.workload import START, events
from pipeline.broker import EmbeddedBroker, free_port
from pipeline.replay import replay

JOIN_EVENTS = 20_000
POLL = "?name[]=spread_events_total&name[]=spread_hashtag_posts_sum&name[]=spread_hashtags_tracked"


def progress(url: str, poll: str = POLL) -> dict[str, float]:
    """Samples of a restricted scrape (``poll``), summed by name."""
    try:
        with urllib.request.urlopen(url + poll, timeout=30) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    out: Counter = Counter()
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[s.name] += s.value
    return dict(out)


def worker(bootstrap: str, workdir: Path, name: str) -> tuple[subprocess.Popen, str]:
    proc, url, log = start_worker(bootstrap, workdir, name, "bench-recovery")
    proc.log = log  # type: ignore[attr-defined]  # for the error message of wait_until
    return proc, url


def wait_until(url: str, n: int, posts: int, proc: subprocess.Popen, limit: float) -> dict:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        m = progress(url)
        if m.get("spread_events_total") == n and m.get("spread_hashtag_posts_sum") == posts:
            return m
        if proc.poll() is not None:
            tail = Path(proc.log).read_text(errors="replace")[-3000:]  # type: ignore[attr-defined]
            raise SystemExit(f"worker exited with {proc.returncode}:\n{tail}")
        time.sleep(0.2)
    raise SystemExit("worker did not finish in time")


def wait_shared(
    urls: list[str], n: int, posts: int, procs: list[subprocess.Popen], limit: float
) -> None:
    """Until every worker exports hashtags and together they show every event and post."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        seen = [progress(u) for u in urls]
        if (
            all(m.get("spread_hashtags_tracked", 0) > 0 for m in seen)
            and sum(m.get("spread_events_total", 0) for m in seen) == n
            and sum(m.get("spread_hashtag_posts_sum", 0) for m in seen) == posts
        ):
            return
        if any(p.poll() is not None for p in procs):
            raise SystemExit("a worker exited: see its log in the bench's directory")
        time.sleep(0.2)
    raise SystemExit("the workers did not add up in time")


def hashtag_posts(lines: list[bytes]) -> int:
    """What ``spread_hashtag_posts_sum`` shows once these events are counted."""
    return sum(len({t.casefold() for t in orjson.loads(x)["hashtags"]}) for x in lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000)
    args = parser.parse_args()
    lines = list(events(args.events))
    # After the workload in event time (its events are 0.05 s apart): none of them is late.
    more = list(events(JOIN_EVENTS, seed=9, start=START + args.events * 0.05, prefix="j"))
    posts = hashtag_posts(lines)
    n_all, posts_all = args.events + JOIN_EVENTS, posts + hashtag_posts(more)
    with tempfile.TemporaryDirectory(prefix="spread-bench-recovery-") as tmp:
        workdir = Path(tmp)
        data = workdir / "events.jsonl"
        data.write_bytes(b"\n".join(lines) + b"\n")
        (workdir / "more.jsonl").write_bytes(b"\n".join(more) + b"\n")
        with EmbeddedBroker(port=free_port(), log_path=str(workdir / "broker.log")) as broker:
            asyncio.run(replay([data], broker.bootstrap))
            first, url = worker(broker.bootstrap, workdir, "first")
            t = time.perf_counter()
            m = wait_until(url, args.events, posts, first, 1800)
            counted = time.perf_counter() - t
            t = time.perf_counter()
            joiner, joiner_url = worker(broker.bootstrap, workdir, "joiner")
            asyncio.run(replay([workdir / "more.jsonl"], broker.bootstrap))
            wait_shared([url, joiner_url], n_all, posts_all, [first, joiner], 1800)
            rebalanced = time.perf_counter() - t
            replayed = progress(url, "?name[]=spread_changelog_records_replayed_total")
            # One at a time: a fresh worker that joined after both had left together was
            # never assigned partitions on the embedded broker (README, Known limits).
            joiner.terminate()
            joiner.wait(60)
            wait_until(url, n_all, posts_all, first, 1800)
            first.terminate()
            first.wait(60)
            second, url = worker(broker.bootstrap, workdir, "second")
            t = time.perf_counter()
            wait_until(url, n_all, posts_all, second, 1800)
            rebuilt = time.perf_counter() - t
            second.terminate()
            second.wait(60)
    print(f"restart from scratch: {rebuilt:.1f} s to rebuild and export exact totals")
    print(f"(first count of the same events, from the posts topic: {counted:.1f} s)")
    again = replayed.get("spread_changelog_records_replayed_total")
    again_text = "?" if again is None else f"{again:,.0f}"
    print(
        f"a second worker joins, {JOIN_EVENTS:,} more events sent: {rebalanced:.1f} s from its "
        f"start until both counted them, exact; the first read {again_text} of its own "
        "changelog records again for the partitions it kept"
    )
    print(f"{args.events:,} events, {m['spread_hashtags_tracked']:,.0f} hashtags, embedded broker")


if __name__ == "__main__":
    main()

"""Workers joining, leaving and dying mid-replay: the counts stay exact.

Each worker exports the hashtags of the ``hashtag-deltas`` partitions it owns right now, so
after every rebalance the sum over all workers' ``/metrics`` is the whole picture: no
partition exported twice, none missing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.groundtruth import Truth, compute
from tests.integration.conftest import CLI, SAMPLE, wait_for

pytestmark = pytest.mark.integration


def start_replay(broker, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*CLI, "replay", "--broker", broker.bootstrap, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def finish(proc: subprocess.Popen) -> None:
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()


class Mismatch(str):
    """Not there yet (falsy for ``wait_for``), saying by how much when it times out."""

    def __bool__(self) -> bool:
        return False


def merged(workers, truth: Truth):
    """The workers' metrics summed, once they add up to every event and hashtag post."""
    events: Counter = Counter()
    posts: dict[str, float] = {}
    regions: dict[tuple[str, str], float] = {}
    seen = []
    for w in workers:
        m = w.scrape()
        mine = Counter()
        for labels, v in m.get("spread_events_total", {}).items():
            mine[dict(labels)["outcome"]] += v
        events.update(mine)
        for labels, v in m.get("hashtag_posts_total", {}).items():
            tag = dict(labels)["hashtag"]
            assert tag not in posts, f"{tag} exported by two workers"
            posts[tag] = v
        for labels, v in m.get("hashtag_region_posts_total", {}).items():
            d = dict(labels)
            regions[(d["hashtag"], d["region"])] = v
        # The consistency checks that must stay 0: no delta entry found partly applied, and
        # no record read before the one preceding it in its partition.
        checks = {"overlaps": m.get("spread_delta_overlaps_total", {}).get((), 0)}
        checks.update(
            (dict(labels)["topic"], v)
            for labels, v in m.get("spread_offset_gaps_total", {}).items()
        )
        assert not any(checks.values()), f"worker {w.metrics_port}: {checks}"
        seen.append(f"{dict(mine)} posts {sum(m.get('hashtag_posts_total', {}).values())}")
    want_events = truth.accepted + sum(truth.rejected.values())
    want_posts = sum(truth.posts.values())
    if events["accepted"] + events["rejected"] != want_events or sum(posts.values()) != want_posts:
        return Mismatch(
            f"events {events['accepted'] + events['rejected']} of {want_events}, "
            f"hashtag posts {sum(posts.values())} of {want_posts}; by worker: {seen}"
        )
    return events, posts, regions


def assert_exact(result, truth: Truth) -> None:
    events, posts, regions = result
    assert events == Counter(accepted=truth.accepted, rejected=sum(truth.rejected.values()))
    assert posts == dict(truth.posts)
    assert regions == dict(truth.region_posts)


# Envelopes, and single-event records: a fetch then holds hundreds of records of several
# partitions, which stage 1 takes as one batch (agents/batches.py).
ENVELOPES = pytest.mark.parametrize("envelope", ["50", "1"])


@ENVELOPES
def test_second_worker_joins_mid_replay_then_first_leaves(broker, make_worker, envelope):
    truth = compute([SAMPLE])
    first = make_worker().start()
    # The sample spans ~14 h of event time: ~10 s at 5000x, long enough to join mid-way.
    replay = start_replay(broker, "--speed", "5000", "--envelope", envelope, str(SAMPLE))
    time.sleep(3)
    second = make_worker().start()
    finish(replay)
    result = wait_for(lambda: merged([first, second], truth), 90, "both workers to add up")
    assert_exact(result, truth)
    # Both took a share: the rebalance really happened.
    assert all(w.scrape().get("hashtag_posts_total") for w in (first, second))

    assert first.stop(signal.SIGTERM) == 0
    result = wait_for(lambda: merged([second], truth), 90, "the survivor to take over")
    assert_exact(result, truth)


@ENVELOPES
# SIGTERM: a stop commits what is finished and leaves the batches in hand to the restart.
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_worker_stopped_mid_replay_and_restarted(broker, make_worker, envelope, sig):
    truth = compute([SAMPLE])
    worker = make_worker().start()
    replay = start_replay(broker, "--speed", "5000", "--envelope", envelope, str(SAMPLE))
    # Stopped once it has counted part of the replay, never at a chosen safe point.
    wait_for(
        lambda: sum(worker.scrape().get("spread_events_total", {}).values()) > 500,
        60,
        "the worker to count some events",
    )
    code = worker.stop(sig)
    assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL)
    worker.start()
    finish(replay)
    result = wait_for(lambda: merged([worker], truth), 90, "the restarted worker to catch up")
    assert_exact(result, truth)


def helper_pids(worker) -> list[int]:
    """The worker's stage-1 helper processes (spawned children), once it has them."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == worker.proc.pid and b"spawn_main" in cmdline:
            pids.append(int(entry.name))
    return pids


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the helper in /proc")
def test_worker_whose_helper_is_killed_mid_replay_goes_on_exactly(broker, make_worker):
    truth = compute([SAMPLE])
    worker = make_worker(extra_args=("--ingest-process", "2")).start()
    replay = start_replay(broker, "--speed", "5000", "--envelope", "50", str(SAMPLE))
    wait_for(
        lambda: sum(worker.scrape().get("spread_events_total", {}).values()) > 500,
        60,
        "the worker to count some events",
    )
    assert worker.scrape()["spread_ingest_helper_up"][()] == 1
    # At this pace batches are small, and each goes to the first helper; the second is not
    # started. Killed as the OOM killer would, whatever it was doing.
    [helper] = helper_pids(worker)
    os.kill(helper, signal.SIGKILL)
    finish(replay)
    result = wait_for(lambda: merged([worker], truth), 90, "the worker to count everything")
    assert_exact(result, truth)
    assert worker.scrape()["spread_ingest_helper_up"][()] == 0
    log = (worker.workdir / f"worker-{worker.metrics_port}-1.log").read_text()
    assert log.count("a helper process of stage 1 died") == 1


def test_partitions_kept_through_a_rebalance_are_not_read_again(broker, make_worker):
    truth = compute([SAMPLE])
    first = make_worker().start()
    finish(start_replay(broker, "--speed", "max", "--envelope", "50", str(SAMPLE)))
    wait_for(lambda: merged([first], truth), 90, "the first worker to count everything")
    written = first.scrape()

    second = make_worker().start()

    def shared():  # once the rebalance gave the second worker its share
        if not all(w.scrape().get("hashtag_posts_total") for w in (first, second)):
            return Mismatch("the second worker exports nothing yet")
        return merged([first, second], truth)

    assert_exact(wait_for(shared, 90, "both workers to add up"), truth)
    # The first worker kept half its partitions and wrote nothing since: its stores hold them
    # to the last offset its writer had acknowledged, so its recovery read none of them again
    # (before, it re-read, one record at a time, all it had written there). The second read
    # its new partitions in bulk.
    kept = first.scrape()
    assert written["spread_changelog_records_replayed_total"][()] == 0
    assert kept["spread_changelog_records_replayed_total"][()] == 0
    assert second.scrape()["spread_changelog_records_restored_total"][()] > 0

"""`spread backfill` writes TSDB blocks with real promtool; a real Prometheus serves them back
at the events' true dates, equal to the ground truth."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request

import pytest

from pipeline.broker import free_port
from tests.groundtruth import compute
from tests.integration.conftest import SAMPLE, run_cli, wait_for

pytestmark = pytest.mark.integration

PROMETHEUS, PROMTOOL = shutil.which("prometheus"), shutil.which("promtool")


@pytest.mark.skipif(
    PROMETHEUS is None or PROMTOOL is None,
    reason="prometheus/promtool not installed: `apt-get install prometheus` (.ci/run does)",
)
def test_backfilled_history_equals_the_ground_truth(tmp_path):
    truth = compute([SAMPLE])
    blocks = tmp_path / "data"
    result = run_cli("backfill", str(SAMPLE), "--out", str(blocks), "--step", "60")
    assert result.returncode == 0, result.stderr.decode()
    assert [p for p in blocks.iterdir() if p.is_dir()], "no blocks written"

    port = free_port()
    (tmp_path / "prometheus.yml").write_text("global: {scrape_interval: 1m}\n")
    proc = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={blocks}",
            "--storage.tsdb.retention.time=100y",  # or 2017 is deleted at once
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        at = (truth.watermark // 60) * 60  # the last step: the watermark's minute

        def query(promql: str) -> dict:
            url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode(
                {"query": promql, "time": at}
            )
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    body = json.load(resp)
            except OSError:
                return {}
            return {
                tuple(sorted(r["metric"].items())): float(r["value"][1])
                for r in body["data"]["result"]
            }

        posts = wait_for(lambda: query("hashtag_posts_total"), 60, "Prometheus to load the blocks")
        assert {dict(k)["hashtag"]: v for k, v in posts.items()} == dict(truth.posts)
        regions = query("hashtag_region_posts_total")
        assert {(dict(k)["hashtag"], dict(k)["region"]): v for k, v in regions.items()} == dict(
            truth.region_posts
        )
        events = {dict(k)["outcome"]: v for k, v in query("spread_events_total").items()}
        assert events == {"accepted": truth.accepted, "rejected": sum(truth.rejected.values())}
        for label, w in {"1m": 1, "15m": 15, "1h": 60}.items():
            rates = query(f'hashtag_posts_per_minute{{window="{label}"}}')
            got = {dict(k)["hashtag"]: v for k, v in rates.items()}
            assert got == pytest.approx({t: truth.per_minute(t, w) for t in truth.posts})
        # History, not just the end: at the first hour the total is what the file had by then.
        early = truth_until(at - 13 * 3600)
        first_hour = query(f"hashtag_posts_total @ {at - 13 * 3600}")
        assert {dict(k)["hashtag"]: v for k, v in first_hour.items()} == early
    finally:
        proc.terminate()
        proc.wait(10)


def truth_until(t: float) -> dict[str, float]:
    """Posts per hashtag among the events read before the replay's watermark passed ``t``'s
    step (the file is replayed in event-time order, so: events with ts before the next step)."""
    limit = (t // 60) * 60 + 60
    out: dict[str, float] = {}
    for tag, minutes in compute([SAMPLE]).minutes.items():
        n = sum(c for m, c in minutes.items() if m < limit)
        if n:
            out[tag] = n
    return out

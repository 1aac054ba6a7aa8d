"""A real Prometheus scrapes a real worker; PromQL over the series equals the ground truth."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request

import pytest

from pipeline.broker import free_port
from tests.groundtruth import compute
from tests.integration.conftest import SAMPLE, replay, wait_for
from tests.integration.test_end_to_end import processed

pytestmark = pytest.mark.integration

PROMETHEUS = shutil.which("prometheus")


@pytest.fixture
def prometheus(tmp_path):
    if PROMETHEUS is None:
        pytest.skip("prometheus not installed: `apt-get install prometheus` (.ci/run does)")
    port = free_port()
    procs = []

    def start(target: str) -> str:
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: hashtag-spread\n"
            f"    static_configs: [{{targets: ['{target}']}}]\n"
        )
        log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115
        procs.append(
            subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        return f"http://127.0.0.1:{port}"

    yield start
    for p in procs:
        p.terminate()
        p.wait(10)


def query(base: str, promql: str) -> list[dict]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = json.load(resp)
    except OSError:
        return []
    return body["data"]["result"] if body.get("status") == "success" else []


def test_prometheus_sees_exact_counts(broker, make_worker, prometheus):
    truth = compute([SAMPLE])
    worker = make_worker().start()
    replay(broker, str(SAMPLE))
    wait_for(lambda: processed(worker, truth), 60, "the worker to count the replay")
    base = prometheus(f"127.0.0.1:{worker.metrics_port}")

    def total_matches():
        result = query(base, "sum(hashtag_posts_total)")
        return result and float(result[0]["value"][1]) == sum(truth.posts.values())

    wait_for(total_matches, 60, "Prometheus to scrape the worker")
    by_tag = {
        r["metric"]["hashtag"]: float(r["value"][1])
        for r in query(base, "sum by (hashtag) (hashtag_posts_total)")
    }
    assert by_tag == dict(truth.posts)
    outcome = {
        r["metric"]["outcome"]: float(r["value"][1])
        for r in query(base, "sum by (outcome) (spread_events_total)")
    }
    assert outcome == {"accepted": truth.accepted, "rejected": sum(truth.rejected.values())}
    top = query(base, 'topk(1, hashtag_posts_per_minute{window="1h"})')
    best = max(truth.posts, key=lambda t: truth.per_minute(t, 60))
    assert top[0]["metric"]["hashtag"] == best

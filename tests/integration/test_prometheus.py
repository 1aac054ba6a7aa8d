"""A real Prometheus, configured by deploy/prometheus/, scrapes a real worker: PromQL over the
series equals the ground truth, the alert rules load, every dashboard query runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from pipeline.broker import free_port
from tests.groundtruth import compute
from tests.integration.conftest import SAMPLE, replay, wait_for
from tests.integration.test_end_to_end import processed

pytestmark = pytest.mark.integration

PROMETHEUS = shutil.which("prometheus")
DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
DASHBOARDS = DEPLOY.parent / "grafana" / "dashboards"


@pytest.fixture
def prometheus(tmp_path):
    if PROMETHEUS is None:
        pytest.skip("prometheus not installed: `apt-get install prometheus` (.ci/run does)")
    port = free_port()
    procs = []

    def start(target: str) -> str:
        # The shipped configuration, with the worker found statically instead of by DNS
        # (there is no `worker` host here) and a faster scrape for the test.
        config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
        config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
        for job in config["scrape_configs"]:
            if job["job_name"] == "hashtag-spread":
                del job["dns_sd_configs"]
                job["static_configs"] = [{"targets": [target]}]
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        shutil.copy(DEPLOY / "alerts.yml", tmp_path / "alerts.yml")
        config = tmp_path / "prometheus.yml"
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


def api(base: str, path: str, **params: str) -> dict:
    url = f"{base}/api/v1/{path}?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as err:
        return json.load(err)
    except OSError:
        return {}


def query(base: str, promql: str) -> list[dict]:
    body = api(base, "query", query=promql)
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

    # The shipped alert rules loaded and evaluate without errors.
    def rules_evaluated():
        groups = api(base, "rules").get("data", {}).get("groups", [])
        rules = [r for g in groups for r in g["rules"]]
        return (
            rules
            if rules and all(r.get("lastEvaluation", "").startswith("2") for r in rules)
            else None
        )

    rules = wait_for(rules_evaluated, 30, "the alert rules to be evaluated")
    assert {r["name"] for r in rules} >= {"SpreadWorkerDown", "SpreadDeltaOverlap"}
    assert all(r["health"] == "ok" for r in rules), rules
    firing = {r["name"] for r in rules if r["state"] == "firing"}  # pending at start is fine
    assert not firing & {"SpreadWorkerDown", "SpreadNoWorkers", "SpreadDeltaOverlap"}

    # Every dashboard query runs against the real series; the per-hashtag ones return data.
    for board in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(board.read_text())["panels"]:
            for target in panel["targets"]:
                expr = target["expr"].replace("$hashtag", ".*").replace("$movement", "metoo")
                body = api(base, "query", query=expr)
                assert body.get("status") == "success", (board.name, panel["title"], body)
                if ("hashtag" in expr or "movement" in expr) and "[" not in expr:
                    assert body["data"]["result"], (board.name, panel["title"], expr)

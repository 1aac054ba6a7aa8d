"""``spread demo`` as a user runs it: one command, October 2017 simulated and counted to the
event, Ctrl-C stops it all."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import urllib.request

import pytest

from pipeline.broker import free_port, port_is_free
from tests.groundtruth import compute
from tests.integration.conftest import CLI, parse_metrics, run_cli, wait_for

pytestmark = pytest.mark.integration


SCALE = "0.002"  # about 40,000 events: the whole cascade model, quick enough for CI


def test_demo_counts_the_simulated_october_and_stops_cleanly_on_ctrl_c(tmp_path):
    # The simulator is deterministic: the same scenario, scale and seed written to a file are
    # the events the demo sends, so the ground truth is computed from that file.
    truth_file = tmp_path / "metoo.jsonl"
    made = run_cli("simulate", "--scale", SCALE, "--seed", "0", "--out", str(truth_file))
    assert made.returncode == 0, made.stderr.decode()
    truth = compute([truth_file])
    assert truth.accepted > 10_000 and truth.posts["metoo"] > 1_000
    broker_port, metrics_port = free_port(), free_port()
    err_path = tmp_path / "demo.err"
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [
                *CLI,
                "demo",
                "--scale",
                SCALE,
                "--speed",
                "max",
                "--broker-port",
                str(broker_port),
                "--metrics-port",
                str(metrics_port),
            ],
            cwd=tmp_path,  # the demo keeps Faust's working files under ./.demo
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, "COLUMNS": "200"},
            start_new_session=True,  # so a failing test can stop the demo's children too
        )
    try:
        found = wait_for(
            lambda: re.search(r"Metrics: (http://\S+/metrics)", err_path.read_text()),
            120,
            "the demo to print where /metrics is",
        )
        url = found.group(1)
        assert url == f"http://127.0.0.1:{metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as resp:
            m = parse_metrics(resp.read().decode())
        # The summary table is printed once the counts have settled: they must be final.
        events = m["spread_events_total"]
        assert events[(("outcome", "accepted"),)] == truth.accepted
        assert events[(("outcome", "rejected"),)] == sum(truth.rejected.values())
        # Series are capped at the top 200 by trend score, plus the movement's hashtags; every
        # exported total must be exact, and every hashtag of the file must be counted.
        posts = {dict(k)["hashtag"]: v for k, v in m["hashtag_posts_total"].items()}
        assert len(posts) == m["spread_hashtags_exported"][()]
        assert 200 <= len(posts) <= 200 + 7
        assert posts == {tag: truth.posts[tag] for tag in posts}
        assert m["spread_hashtags_tracked"][()] == len(truth.posts)
        for variant in ("metoo", "balancetonporc", "yotambien"):
            assert variant in truth.posts
        assert "Top hashtags" in err_path.read_text()

        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
        assert proc.wait(60) == 0, err_path.read_text()
    finally:
        if proc.poll() is None:
            # The demo's worker and broker run in sessions of their own: only the demo can
            # stop them, so it gets Ctrl-C first, and SIGKILL only if it does not exit.
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    err = err_path.read_text()
    assert "demo: stopped" in err and "Traceback" not in err, err
    assert port_is_free("127.0.0.1", broker_port) and port_is_free("127.0.0.1", metrics_port)

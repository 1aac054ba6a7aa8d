"""A bad argument, an unreadable file, a busy port or an absent broker: one line, exit 2."""

from __future__ import annotations

import socket

import pytest

from pipeline.broker import free_port
from tests.integration.conftest import SAMPLE, run_cli

pytestmark = pytest.mark.integration


def assert_one_line_error(result, *needles: str) -> None:
    err = result.stderr.decode()
    assert result.returncode == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("spread: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0]


@pytest.fixture
def busy_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_broker_on_busy_port(busy_port):
    assert_one_line_error(run_cli("broker", "--port", str(busy_port)), "busy")


def test_broker_with_missing_binary(monkeypatch):
    monkeypatch.setenv("CALF_TANSU_BIN", "/nonexistent/tansu")
    assert_one_line_error(run_cli("broker", "--port", str(free_port())), "not found")


def test_worker_on_busy_metrics_port(busy_port):
    result = run_cli("worker", "--broker", "127.0.0.1:1", "--metrics-port", str(busy_port))
    assert_one_line_error(result, "busy")


def test_worker_without_broker():
    result = run_cli(
        "worker", "--broker", f"127.0.0.1:{free_port()}", "--metrics-port", str(free_port())
    )
    assert_one_line_error(result, "cannot reach broker")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["replay", "/nonexistent/file.jsonl"], "cannot read"),
        (["replay", "--speed", "fast", str(SAMPLE)], "--speed"),
        (["replay", "--speed", "-3", str(SAMPLE)], "--speed"),
        (["replay", "--envelope", "0", str(SAMPLE)], "--envelope"),
        (["replay", "--broker", "nohostport:abc", str(SAMPLE)], "bad broker address"),
        (["worker", "--partitions", "0"], "--partitions"),
        (["worker", "--movement", "metoo"], "expected NAME=tag,tag"),
        (["demo", "--scenario", "/nonexistent.toml"], "scenario"),
        (["report", str(SAMPLE), "--hashtag", "nope", "--out", "/tmp/r.png"], "no accepted post"),
        (["report", str(SAMPLE), "--hashtag", "metoo", "--out", "/tmp/r.pdf"], ".png or .html"),
        (["frobnicate"], "No such command"),
    ],
)
def test_bad_arguments(args, needle):
    assert_one_line_error(run_cli(*args), needle)


def test_replay_without_broker():
    result = run_cli("replay", "--broker", f"127.0.0.1:{free_port()}", str(SAMPLE))
    assert_one_line_error(result, "cannot reach broker")


def test_replay_of_a_corrupt_gzip(tmp_path):
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(b"\x1f\x8b" + b"not really gzip" * 10)
    result = run_cli("replay", "--broker", f"127.0.0.1:{free_port()}", str(bad))
    assert_one_line_error(result)


@pytest.mark.parametrize("command", ["replay", "worker"])
def test_bad_security_setting(monkeypatch, command):
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "TLS")
    args = [str(SAMPLE)] if command == "replay" else ["--metrics-port", str(free_port())]
    assert_one_line_error(run_cli(command, *args), "KAFKA_SECURITY_PROTOCOL")

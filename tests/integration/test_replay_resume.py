"""An interrupted replay resumes without duplicates or gaps: every line of the file is in
'posts' exactly once after `spread replay` is stopped with SIGINT and run again with --resume."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections import Counter

import pytest
from aiokafka import AIOKafkaConsumer

from pipeline.checkpoint import Checkpoint, options_of
from pipeline.replay import Selection
from tests.groundtruth import lines_of
from tests.integration.conftest import CLI, SAMPLE

pytestmark = pytest.mark.integration


async def everything_in(bootstrap: str, topic: str, expected: int) -> Counter:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    lines: Counter = Counter()
    try:
        idle = 0
        while idle < 10:
            batch = await consumer.getmany(timeout_ms=200)
            idle = 0 if batch else idle + 1
            for records in batch.values():
                for r in records:
                    lines.update(r.value.split(b"\n"))
            if sum(lines.values()) > expected:
                break
    finally:
        await consumer.stop()
    return lines


def test_interrupted_replay_resumes_exactly(broker, tmp_path):
    expected = Counter(lines_of([SAMPLE]))
    env = {**os.environ, "COLUMNS": "200"}
    # The sample spans ~14 h: at 3000x about 17 s, interrupted a few seconds in.
    first = subprocess.Popen(
        [*CLI, "replay", "--broker", broker.bootstrap, "--speed", "3000", "--envelope", "20",
         str(SAMPLE)],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    time.sleep(4)
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 130, err.decode()
    assert "--resume continues" in err.decode() and "Traceback" not in err.decode()
    assert list((tmp_path / ".spread-replay").glob("*.json"))

    sent_before = asyncio.run(everything_in(broker.bootstrap, "posts", 0))
    assert 0 < sum(sent_before.values()) < sum(expected.values())

    second = subprocess.run(
        [*CLI, "replay", "--broker", broker.bootstrap, "--resume", "--envelope", "500",
         str(SAMPLE)],
        cwd=tmp_path, env=env, capture_output=True, timeout=120,
    )  # fmt: skip
    assert second.returncode == 0, second.stderr.decode()
    assert "resumed after" in second.stderr.decode()
    assert not list((tmp_path / ".spread-replay").glob("*.json"))  # done: checkpoint removed

    everything = asyncio.run(everything_in(broker.bootstrap, "posts", sum(expected.values())))
    assert everything == expected  # each line exactly once


def test_resume_refuses_changed_files(broker, tmp_path):
    data = tmp_path / "events.jsonl"
    data.write_bytes(SAMPLE.read_bytes())
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        Checkpoint.for_replay([str(data)], options_of(Selection(fmt="auto"))).save(10)
    finally:
        os.chdir(cwd)
    data.write_bytes(SAMPLE.read_bytes() + b"\n")
    result = subprocess.run(
        [*CLI, "replay", "--broker", broker.bootstrap, "--resume", str(data)],
        cwd=tmp_path, capture_output=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and b"files changed" in result.stderr

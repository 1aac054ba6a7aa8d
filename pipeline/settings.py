"""Settings shared by the CLI, the producer side and the worker."""

from __future__ import annotations

import os
from dataclasses import dataclass

from pipeline.limits import DEFAULT_LIMITS, Limits

POSTS = "posts"
REJECTED = "posts-rejected"
DELTAS = "hashtag-deltas"  # the suffix: each app id has its own (deltas_topic)

DEFAULT_BROKER = "localhost:9092"
DEFAULT_PARTITIONS = 8
DEFAULT_APP_ID = "hashtag-spread"
DEFAULT_METRICS_PORT = 8000
DEFAULT_MAX_HASHTAGS = 200  # series cap per worker (DESIGN "Metric contract")
# An event older than its partition's watermark minus this is late (README "Late events").
DEFAULT_GRACE_SECONDS = 3600.0
# The worker's and its stage-1 helpers' garbage collector thresholds; CPython's default is
# (700, 10, 10), the third value being how many generation-1 collections make a full one.
# Full collections walk every live object: the worker's tables (millions of them) and a
# helper's slice in the making (hundreds of thousands) are plain acyclic data, freed by
# reference counting anyway, so full collections become rare, not disabled.
GC_THRESHOLDS = (700, 10, 10_000)


def deltas_topic(app_id: str) -> str:
    """Stage 1 -> stage 2 topic of one app id, named like Faust's changelogs: two app ids on
    one cluster must not read each other's deltas (each counts everything, independently)."""
    return f"{app_id}-{DELTAS}"


class SettingsError(ValueError):
    """A setting a user gave is unusable; the message is one line meant for them."""


def parse_broker(value: str | None) -> str:
    """``HOST:PORT[,HOST:PORT...]`` from a user's value; a ``kafka://`` prefix is accepted.

    ``None`` means ``$KAFKA_BOOTSTRAP``, then ``localhost:9092``.
    """
    if value is None:
        value = os.environ.get("KAFKA_BOOTSTRAP") or DEFAULT_BROKER
    servers = []
    for part in value.split(","):
        part = part.strip()
        for prefix in ("kafka://", "tcp://"):
            if part.startswith(prefix):
                part = part[len(prefix) :]
        host, sep, port = part.rpartition(":")
        if not sep:
            host, port = part, "9092"
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise SettingsError(f"bad broker address {value!r}: expected HOST:PORT")
        servers.append(f"{host}:{int(port)}")
    return ",".join(servers)


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    broker: str = DEFAULT_BROKER
    app_id: str = DEFAULT_APP_ID
    partitions: int = DEFAULT_PARTITIONS
    metrics_host: str = "127.0.0.1"
    metrics_port: int = DEFAULT_METRICS_PORT
    data_dir: str = ".spread-data"
    limits: Limits = DEFAULT_LIMITS
    max_hashtags: int = DEFAULT_MAX_HASHTAGS
    always_export: tuple[str, ...] = ()
    # (name, normalised tags) per movement (pipeline.virality.movements); exported as
    # movement_*, and their tags always get hashtag_* series.
    movements: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # w_1..w_K of a configured generation interval; empty: learned from parent links.
    generation_interval: tuple[float, ...] = ()
    grace_seconds: float = DEFAULT_GRACE_SECONDS
    # False: counts, rates and growth only: no R_t, trend, users (for throughput); the CLI
    # then leaves ``movements`` empty too.
    virality: bool = True
    # Helper processes for stage 1's decoding and pre-aggregation (agents.ingest.Helpers);
    # 0: in the worker's own process.
    ingest_processes: int = 0

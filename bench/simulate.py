"""The simulator's speed and memory, and its calibration measured at a scale.

    python -m bench.simulate [--scenario metoo-2017] [--scale 0.1] [--broker-scale 0.02]
    python -m bench.simulate --calibrate --scale 1     # the README's calibration table

Each measurement runs in a child process of its own, so peak RSS is that measurement's:

- write: events/s generated and written as JSONL to a file (plain, then gzip), peak RSS, and
  the largest number of pending entries in the model's agenda (what memory grows with);
- broker: events/s generated and sent to an embedded broker in envelopes (acknowledged),
  against replaying the same events from a file in the same run;
- calibrate: every calibrated figure measured from the stream (no file written).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.broker import EmbeddedBroker, free_port
from pipeline.replay import ReplayStats, replay, send_lines
from pipeline.simulate.measure import Tally, calibration
from pipeline.simulate.model import Engine, plan
from pipeline.simulate.output import write_jsonl
from pipeline.simulate.scenario import load

SAMPLE_HEAP_EVERY = 4096


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child_write(scenario: str, scale: float, seed: int, out: str) -> dict:
    t0 = time.perf_counter()
    resolved = plan(load(scenario), scale)
    planned = time.perf_counter() - t0
    engine = Engine(resolved, seed)
    most = 0

    def watched():
        nonlocal most
        for i, item in enumerate(engine.run()):
            if i % SAMPLE_HEAP_EVERY == 0:
                most = max(most, len(engine.agenda))
            yield item

    stats = write_jsonl(watched(), out, ReplayStats())
    return {
        "events": stats.events,
        "plan_s": planned,
        "seconds": stats.elapsed,
        "rate": stats.rate,
        "bytes": Path(out).stat().st_size,
        "heap": most,
        "rss_mib": peak_rss_mib(),
    }


def child_broker(scenario: str, scale: float, seed: int, tmp: str) -> dict:
    resolved = plan(load(scenario), scale)
    path = Path(tmp) / "events.jsonl"
    write_jsonl(Engine(resolved, seed).run(), str(path), ReplayStats())
    with EmbeddedBroker(port=free_port(), log_path=str(Path(tmp) / "broker.log")) as b:
        t = time.perf_counter()
        sent = asyncio.run(send_lines(Engine(resolved, seed).run(), b.bootstrap, ReplayStats()))
        simulate = sent.events / (time.perf_counter() - t)
        t = time.perf_counter()
        replayed = asyncio.run(replay([path], b.bootstrap, topic="posts-replay"))
        from_file = replayed.events / (time.perf_counter() - t)
    return {"events": sent.events, "simulate": simulate, "replay": from_file}


def child_calibrate(scenario: str, scale: float, seed: int) -> dict:
    sc = load(scenario)
    t = time.perf_counter()
    tally = Tally(sc)
    for _, line in Engine(plan(sc, scale), seed).run():
        tally.add_lines((line,))
    rows = [(r.figure, r.target, r.measured) for r in calibration(tally, scale)]
    extra = {}
    if scenario == "arab-spring-2011":
        extra["per_day_EG"] = tally.per_day("twitter", ["EG"])
    return {
        "events": tally.events,
        "seconds": time.perf_counter() - t,
        "rows": rows,
        "rss_mib": peak_rss_mib(),
        **extra,
    }


def run_child(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.simulate", "--child", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="metoo-2017")
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--broker-scale", type=float, default=0.0, help="0: no broker run")
    parser.add_argument("--calibrate", action="store_true", help="only the calibration table")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        what, scenario, scale, seed, *rest = args.child
        fn = {"write": child_write, "broker": child_broker, "calibrate": child_calibrate}[what]
        print(json.dumps(fn(scenario, float(scale), int(seed), *rest)))
        return
    common = (args.scenario, str(args.scale), str(args.seed))
    if args.calibrate:
        result = run_child("calibrate", *common)
        print(
            f"{args.scenario} at scale {args.scale:g}, seed {args.seed}: "
            f"{result['events']:,} events measured in {result['seconds']:.0f} s, "
            f"peak RSS {result['rss_mib']:,.0f} MiB"
        )
        print(f"| figure | target × {args.scale:g} | measured | ratio |")
        print("|---|---:|---:|---:|")
        for figure, target, measured in result["rows"]:
            print(f"| {figure} | {target:,.0f} | {measured:,.0f} | {measured / target:.3f} |")
        if "per_day_EG" in result:
            print("EG twitter events carrying the tag, per day:", result["per_day_EG"])
        return
    with tempfile.TemporaryDirectory(prefix="spread-bench-simulate-") as tmp:
        for name in ("events.jsonl", "events.jsonl.gz"):
            r = run_child("write", *common, str(Path(tmp) / name))
            print(
                f"{args.scenario} x{args.scale:g} -> {name}: {r['events']:,} events in "
                f"{r['seconds']:.1f} s = {r['rate']:,.0f} events/s "
                f"({r['bytes'] / r['events']:.0f} bytes/event; plan {r['plan_s']:.1f} s); "
                f"peak RSS {r['rss_mib']:,.0f} MiB, <= {r['heap']:,} pending children and sources",
                flush=True,
            )
        if args.broker_scale:
            r = run_child("broker", args.scenario, str(args.broker_scale), str(args.seed), tmp)
            ratio = r["simulate"] / r["replay"]
            print(
                f"into the embedded broker, x{args.broker_scale:g} ({r['events']:,} events): "
                f"simulate {r['simulate']:,.0f} events/s, replay of the same file "
                f"{r['replay']:,.0f} events/s (ratio {ratio:.2f})"
            )


if __name__ == "__main__":
    main()

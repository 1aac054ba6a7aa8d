"""The spread simulator: determinism, order, valid events, calibration, scaling, CLI.

Calibration is measured from generated events at small scales; tolerances are set from the
sample sizes. Platforms are independent processes in the model, so a platform is measured on
its own (``plan(..., only=...)``) at the scale its noise needs: Twitter and Instagram at 0.05
(sd ≈ 1-3 %), Facebook at 0.01 (sd ≈ 1.5 %); ±10 % is then more than three standard deviations.
"""

import gzip
import heapq
import itertools
import math
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.events import KINDS, validate
from pipeline.hashtags import distinct
from pipeline.limits import DEFAULT_LIMITS
from pipeline.regions import ISO_ALPHA2
from pipeline.simulate.agenda import Agenda
from pipeline.simulate.distributions import DelayDist, negative_binomial
from pipeline.simulate.expect import distinct_fraction, pool_for
from pipeline.simulate.measure import Tally, calibration
from pipeline.simulate.model import events, plan
from pipeline.simulate.scenario import Delay, builtins, load

METOO = load("metoo-2017")


def lines(resolved, seed=0):
    return [line for _, line in events(resolved, seed)]


@pytest.fixture(scope="module")
def small():
    """metoo-2017 at scale 0.002, every platform (~40,000 events)."""
    return lines(plan(METOO, 0.002))


@pytest.fixture(scope="module")
def twitter_instagram():
    return Tally(METOO).add_lines(lines(plan(METOO, 0.05, only=("twitter", "instagram"))))


@pytest.fixture(scope="module")
def facebook():
    return Tally(METOO).add_lines(lines(plan(METOO, 0.01, only=("facebook",))))


# --- determinism, order, shape ----------------------------------------------------------------


def test_same_scenario_scale_and_seed_give_the_same_bytes(small):
    again = lines(plan(METOO, 0.002))
    assert again == small
    other = lines(plan(METOO, 0.002), seed=1)
    assert other != small


def test_events_come_in_time_order(small):
    stamps = [orjson.loads(line)["ts"] for line in small]
    assert stamps == sorted(stamps)
    assert METOO.start <= stamps[0] and stamps[-1] < METOO.end


def test_every_line_is_a_valid_event(small):
    seen: set[str] = set()
    for line in small:
        event = orjson.loads(line)
        assert validate(event) is None
        assert list(event) == [
            "id", "ts", "platform", "kind", "user", "region", "hashtags", "parent", "lang",
        ]  # fmt: skip
        assert event["id"] not in seen
        seen.add(event["id"])
        assert event["platform"] in ("twitter", "facebook", "instagram")
        assert event["kind"] in KINDS
        assert event["region"] in ISO_ALPHA2
        assert 1 <= len(event["hashtags"]) <= DEFAULT_LIMITS.max_hashtags
        assert all(
            0 < len(t) <= DEFAULT_LIMITS.max_hashtag_chars for t in distinct(event["hashtags"])
        )
        assert event["parent"] is None or event["parent"] in seen  # parents come first
        assert round(event["ts"], 3) == event["ts"]
        assert event["lang"]


def test_replies_reposts_and_reactions_carry_their_parents_hashtags(small):
    by_id = {}
    for line in small:
        event = orjson.loads(line)
        by_id[event["id"]] = event
        parent = by_id.get(event["parent"])
        if parent and event["kind"] != "post":
            assert event["hashtags"] == parent["hashtags"]


# --- calibration (DESIGN "Scenarios"), at small scales ------------------------------------------


def _row(tally, scale, start):
    (row,) = [r for r in calibration(tally, scale) if r.figure.startswith(start)]
    return row


def test_twitter_and_instagram_volumes(twitter_instagram):
    twitter = _row(twitter_instagram, 0.05, "twitter events carrying MeToo, hours 0-72")
    assert twitter.target == 825_000 * 0.05
    assert twitter.ratio == pytest.approx(1, abs=0.10)
    instagram = _row(twitter_instagram, 0.05, "instagram events carrying MeToo, hours 0-48")
    assert instagram.target == 400_000 * 0.05
    assert instagram.ratio == pytest.approx(1, abs=0.10)


def test_facebook_volume_and_distinct_users(facebook):
    posts = _row(facebook, 0.01, "facebook events carrying MeToo, hours 0-24")
    assert posts.target == 12_000_000 * 0.01
    assert posts.ratio == pytest.approx(1, abs=0.10)
    users = _row(facebook, 0.01, "facebook distinct users")
    assert users.target == 4_700_000 * 0.01
    assert users.ratio == pytest.approx(1, abs=0.10)


def test_the_root_post_has_exactly_its_audience(twitter_instagram):
    root = "tw-919659154167545856"
    got = {k: n for (r, k), n in twitter_instagram.children.items() if r == root}
    # Delays are log-normal: a child later than 72 h has probability ~1e-4, hence the slack.
    assert got["repost"] == pytest.approx(21_000 * 0.05, abs=2)
    assert got["reply"] == pytest.approx(59_000 * 0.05, abs=2)
    assert got["reaction"] == pytest.approx(43_000 * 0.05, abs=2)
    assert "post" not in got


def test_counts_scale_linearly():
    half = Tally(METOO).add_lines(lines(plan(METOO, 0.025, only=("twitter", "instagram"))))
    double = Tally(METOO).add_lines(lines(plan(METOO, 0.05, only=("twitter", "instagram")), 1))
    for platform, hours in (("twitter", 72), ("instagram", 48)):
        ratio = double.count(platform, 0, hours) / half.count(platform, 0, hours)
        assert ratio == pytest.approx(2, rel=0.12)
    assert double.events / half.events == pytest.approx(2, rel=0.05)  # with background noise


def test_pools_scale_with_the_scale():
    one, two = plan(METOO, 0.01), plan(METOO, 0.02)
    for a, b in zip(one.platforms, two.platforms, strict=True):
        assert sum(b.pools.values()) == pytest.approx(2 * sum(a.pools.values()), rel=0.01)


def test_variants_appear_in_their_regions(twitter_instagram, facebook):
    tags = twitter_instagram.tags + facebook.tags
    for variant in METOO.variants:
        (norm,) = distinct([variant.tag])
        total = sum(n for (t, _), n in tags.items() if t == norm)
        home = sum(n for (t, r), n in tags.items() if t == norm and r in variant.regions)
        assert total > 0 and home / total > 0.8, variant.tag
    assert sum(n for (t, r), n in tags.items() if t == "balancetonporc" and r == "FR") > 100


def test_arab_spring_rises_a_hundredfold_in_a_week():
    scenario = load("arab-spring-2011")
    # Day 1 at full scale (streaming: stop after it) and the whole week at 0.1.
    first = Tally(scenario)
    for ts, line in events(plan(scenario, 1.0)):
        if ts >= scenario.start + 86_400:
            break
        first.add_lines([line])
    day1 = first.per_day("twitter", ["EG"])[0]
    assert day1 == pytest.approx(2_300, rel=0.2)
    week = Tally(scenario).add_lines(lines(plan(scenario, 0.1))).per_day("twitter", ["EG"])
    assert week[-1] == pytest.approx(230_000 * 0.1, rel=0.1)
    assert all(b > a for a, b in itertools.pairwise(week))
    # Least-squares slope of log(count) per day: a factor of 100^(1/6) ≈ 2.15 a day.
    xs, ys = range(1, 7), [math.log(n) for n in week[1:]]
    mx, my = sum(xs) / 6, sum(ys) / 6
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )
    assert math.exp(slope) == pytest.approx(100 ** (1 / 6), rel=0.06)


def test_branching_offspring_per_phase_match_r():
    scenario = load("branching")
    parents: dict[str, float] = {}
    children: Counter[str] = Counter()
    for ts, line in events(plan(scenario, 0.02)):
        event = orjson.loads(line)
        parents[event["id"]] = ts
        if event["parent"] is not None:
            assert event["parent"] in parents
            children[event["parent"]] += 1
    phases = scenario.platforms[0].phases
    bounds = [scenario.start + 6 * 3600 * i for i in range(5)]
    # Parents close to the end lose children to truncation: leave out the last 4 hours.
    bounds[-1] -= 4 * 3600
    for i, phase in enumerate(phases):
        ids = [p for p, ts in parents.items() if bounds[i] <= ts < bounds[i + 1]]
        mean = sum(children[p] for p in ids) / len(ids)
        # NB(mean R, k = 1): sd of one parent's count sqrt(R + R²); thousands of parents.
        se = math.sqrt(phase.r + phase.r**2) / math.sqrt(len(ids))
        assert abs(mean - phase.r) < max(4 * se, 0.02), (i, mean, phase.r, len(ids))


# --- the model's parts ------------------------------------------------------------------------


def test_the_agenda_pops_in_the_order_of_one_heap():
    rng = random.Random(5)
    agenda, heap, got, want = Agenda(width=10.0), [], [], []
    now, seq = 0.0, 0
    for _ in range(20_000):
        if heap and rng.random() < 0.5:
            got.append(agenda.pop())
            want.append(heapq.heappop(heap))
            now = want[-1][0]
        else:  # new work is never earlier than what was taken last, as in the model
            seq += 1
            entry = (now + rng.choice([0.0, rng.expovariate(0.05)]), seq)
            agenda.push(entry)
            heapq.heappush(heap, entry)
    assert got == want and len(agenda) == len(heap)


@pytest.mark.parametrize("delay", [Delay("gamma", 40, 1.2), Delay("lognormal", 45, 2.0)])
def test_delay_quantiles_invert_the_cdf(delay):
    dist = DelayDist(delay)
    for u in (1e-9, 1e-4, 0.1, 0.5, 0.9, 0.9999):
        assert dist.cdf(dist.quantile(u)) == pytest.approx(u, rel=1e-4, abs=1e-9)
    rng = random.Random(3)
    draws = [dist.sample(rng) for _ in range(20_000)]
    assert sum(draws) / len(draws) == pytest.approx(delay.mean_minutes * 60, rel=0.05)


def test_negative_binomial_mean_and_overdispersion():
    rng = random.Random(4)
    draws = [negative_binomial(rng, 2.0, 0.5) for _ in range(40_000)]
    mean = sum(draws) / len(draws)
    var = sum((d - mean) ** 2 for d in draws) / len(draws)
    assert mean == pytest.approx(2.0, rel=0.05)
    assert var == pytest.approx(2.0 + 2.0**2 / 0.5, rel=0.1)


def test_distinct_users_maths():
    assert distinct_fraction(2.0, 1.0) == pytest.approx(1 - math.exp(-2.0))
    pool = pool_for(12_000_000, 4_700_000, 2.0)
    assert pool * distinct_fraction(12_000_000 / pool, 2.0) == pytest.approx(4_700_000)


# --- command line -----------------------------------------------------------------------------


def test_cli_lists_the_builtins():
    result = subprocess.run(
        [str(Path(sys.executable).with_name("spread")), "simulate", "--list"],
        capture_output=True,
        text=True,
        check=True,
    )
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names == ["arab-spring-2011", "branching", "metoo-2017"]


def test_cli_writes_the_same_file_as_the_model(tmp_path: Path):
    out = tmp_path / "b.jsonl.gz"
    runner = CliRunner()
    args = ["simulate", "--scenario", "branching", "--scale", "0.002", "--seed", "7"]
    result = runner.invoke(cli, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = gzip.decompress(out.read_bytes())
    expected = b"".join(line + b"\n" for line in lines(plan(load("branching"), 0.002), 7))
    assert data == expected
    again = tmp_path / "again.jsonl.gz"
    assert runner.invoke(cli, [*args, "--out", str(again)]).exit_code == 0
    assert again.read_bytes() == out.read_bytes()  # gzip header: no time, no name


def test_cli_bad_scenario_file_is_one_line_and_exit_2(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    text = builtins()["branching"].read_text().replace("r = 1.2", "r = -0.5")
    bad.write_text(text)
    result = CliRunner().invoke(cli, ["simulate", "--scenario", str(bad), "--out", "x.jsonl"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"spread: error: scenario {bad}: field 'platforms.twitter.phases[1].r': must be >= 0"
    )


def test_cli_refuses_speed_with_a_file(tmp_path: Path):
    result = CliRunner().invoke(
        cli, ["simulate", "--out", str(tmp_path / "x.jsonl"), "--speed", "60"]
    )
    assert result.exit_code == 2 and "--speed paces sending" in result.output

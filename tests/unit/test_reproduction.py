"""R_t (Cori et al. 2013, with imported cases) and the generation interval it needs.

The known-answer test runs the simulator's ``branching`` scenario in process (one tag, R =
0.6, 1.2, 0.9, 0.4 for 6 h each, gamma generation interval mean 30 min, cv 0.6), learns the
generation interval from the parent links and checks that ``cori`` (its defaults: newest bucket
skipped, a 60-minute window) recovers each phase's R within ±15 % at 8 points of each phase,
once the window starts three generation intervals (90 min) into the phase.

Scale 0.5 (~440,000 events) and window 60 are set from measurements over 20 seeds: the error's
sd is then about 3.3 % in the quiet phases (R = 0.6 and 0.4, offspring overdispersed, k = 1)
and 1 % in the busy ones; the worst of the 32 points stayed under 11 % on every seed. A
30-minute window would need about 2.5 times the events for the same margin (at scale 0.5 its
worst point passed 15 % on 3 seeds of 20): one reason the default is 60.
"""

import json
import math
import random

import orjson
import pytest

from pipeline.simulate.model import events, plan
from pipeline.simulate.scenario import load
from pipeline.virality.generation import (
    MAX_LAG_MINUTES,
    MIN_SAMPLES,
    TAIL,
    GenerationInterval,
    default_weights,
    delay_weights_from_config,
    gamma_p,
    mean_lag,
)
from pipeline.virality.reproduction import (
    EXACT_SHAPE_LIMIT,
    WINDOW,
    Estimate,
    cori,
    gamma_quantile,
    infectiousness,
    window_infectiousness,
)

BRANCHING = load("branching")
SCALE = 0.5
SEED = 0
TESTED_WINDOW = WINDOW  # the default, 60 minutes
MINUTES = round(BRANCHING.hours * 60)
WATERMARK_OFFSET = 30.0  # seconds into the newest bucket: it is still half empty


class Series:
    """Per-minute counts of the branching run, and the same over each bucket's first 30 s
    (the newest bucket as a live stream sees it with the watermark 30 s into it)."""

    def __init__(self) -> None:
        self.total = [0] * (MINUTES + 1)
        self.local = [0] * (MINUTES + 1)
        self.total_half = [0] * (MINUTES + 1)
        self.local_half = [0] * (MINUTES + 1)
        self.gi = GenerationInterval()

    def newest_first(self, bucket: int, n: int) -> tuple[list[int], list[int]]:
        """(local, total) for the ``n`` buckets ending with ``bucket`` (minutes since start),
        as seen with the watermark ``WATERMARK_OFFSET`` seconds into ``bucket``."""
        local = [self.local_half[bucket]]
        total = [self.total_half[bucket]]
        for m in range(bucket - 1, bucket - n, -1):
            local.append(self.local[m] if m >= 0 else 0)
            total.append(self.total[m] if m >= 0 else 0)
        return local, total


@pytest.fixture(scope="module")
def branching() -> Series:
    series = Series()
    start = BRANCHING.start
    ts_of: dict[str, float] = {}
    delays: list[float] = []
    for ts, line in events(plan(BRANCHING, SCALE), SEED):
        event = orjson.loads(line)
        ts_of[event["id"]] = ts
        offset = ts - start
        m = int(offset // 60)
        half = offset - m * 60 <= WATERMARK_OFFSET
        series.total[m] += 1
        series.total_half[m] += half
        if event["parent"] is not None:
            delays.append(ts - ts_of[event["parent"]])
            series.local[m] += 1
            series.local_half[m] += half
    series.gi.add_delays(delays)
    return series


# --- the known answer -------------------------------------------------------------------------


def test_the_learned_generation_interval_has_the_scenario_mean(branching):
    gi = branching.gi
    assert gi.learned and gi.samples > 100_000 and gi.dropped == 0
    assert gi.mean_minutes == pytest.approx(30.0, rel=0.10)
    # and it is close to the discretised scenario distribution, lag by lag
    learned, configured = gi.weights(), default_weights(30.0, 0.6)
    assert sum(abs(a - b) for a, b in zip(learned, configured, strict=False)) < 0.05


def test_cori_recovers_each_phase_r(branching):
    weights = branching.gi.weights()
    need = 1 + TESTED_WINDOW + len(weights)
    errors = []
    for i, phase in enumerate(BRANCHING.platforms[0].phases):
        start, end = i * 360, (i + 1) * 360
        # the window (the buckets before the watermark's) starts 90 min into the phase
        for bucket in range(start + 90 + TESTED_WINDOW, end + 1, 30):
            local, total = branching.newest_first(bucket, need)
            estimate = cori(local, total, weights, window=TESTED_WINDOW)
            assert estimate is not None
            assert estimate.lower < estimate.mean < estimate.upper
            errors.append((i, bucket - start, phase.r, round(estimate.mean / phase.r - 1, 3)))
    assert len(errors) == 32
    bad = [e for e in errors if abs(e[3]) > 0.15]
    assert not bad, f"(phase, minute, r, relative error) outside ±15 %: {bad}"


def test_the_incomplete_newest_bucket_would_bias_r_low(branching):
    """With the watermark 30 s into its bucket, counting that bucket as a whole minute
    lowers R by about half a bucket in a 30-bucket window (~1.7 %)."""
    weights = branching.gi.weights()
    ratios = []
    for bucket in range(720 + 120, 1080, 30):  # phase 3 (R = 0.9), 8 windows
        local, total = branching.newest_first(bucket, 2 + WINDOW + len(weights))
        skipped = cori(local, total, weights)
        counted = cori(local, total, weights, skip_newest=0)
        assert skipped is not None and counted is not None
        ratios.append(counted.mean / skipped.mean)
    assert 0.95 < sum(ratios) / len(ratios) < 0.995


# --- cori -------------------------------------------------------------------------------------


def test_cori_on_a_constant_stream_is_local_over_total():
    weights = default_weights()
    n = 1 + WINDOW + len(weights)
    estimate = cori([60] * n, [100] * n, weights)
    assert estimate is not None
    expected = (1 + 60 * WINDOW) / (1 / 5 + 100 * WINDOW)
    assert estimate.mean == pytest.approx(expected, rel=1e-9)
    assert estimate.lower < 0.6 < estimate.upper
    # Gamma(1 + 60 · WINDOW, ·): the 95 % interval is about ±1.96 / sqrt(shape) of the mean
    shape = 1 + 60 * WINDOW
    assert estimate.upper / estimate.mean - 1 == pytest.approx(1.96 / math.sqrt(shape), rel=0.05)


def test_cori_without_data_says_nothing():
    weights = default_weights()
    assert cori([], [], weights) is None
    assert cori([0] * 200, [0] * 200, weights) is None
    assert cori([5] * 200, [0] * 200, weights) is None  # children without parents: no Λ
    # Σ Λ just below and above the threshold of 10 expected children (w = lag 1 only)
    assert cori([0] * 40, [0, 0, 9] + [0] * 37, [1.0]) is None
    low = cori([0] * 40, [0, 0, 10] + [0] * 37, [1.0])
    assert low is not None and low.mean == pytest.approx(1 / 10.2)
    assert low.lower < low.mean < low.upper < 0.5


def test_cori_skips_the_newest_bucket_and_pads_short_series():
    weights = [0.5, 0.5]
    local, total = [3, 4, 4, 4], [1000, 9, 9, 9, 9]
    base = cori(local, total, weights, window=2, min_expected=1)
    assert base is not None
    # window = buckets 1 and 2; Λ_1 = Λ_2 = 9; bucket 0 (the incomplete one) is ignored
    assert base.mean == pytest.approx((1 + 8) / (0.2 + 18))
    assert cori([99, 4, 4], [0, 9, 9, 9, 9], weights, window=2, min_expected=1) == base
    padded = cori(local + [0] * 10, total + [0] * 10, weights, window=2, min_expected=1)
    assert padded == base
    assert cori(local, total, weights, window=2, skip_newest=0, min_expected=1) != base
    with pytest.raises(ValueError):
        cori(local, total, weights, window=0)


def test_infectiousness_is_the_weighted_past():
    total = [0, 10, 20, 40]
    assert infectiousness(total, [0.5, 0.25, 0.25], 0) == 0.5 * 10 + 0.25 * 20 + 0.25 * 40
    assert infectiousness(total, [0.5, 0.25, 0.25], 1) == 0.5 * 20 + 0.25 * 40
    assert infectiousness(total, [0.5, 0.25, 0.25], 3) == 0


# --- the gamma posterior's quantiles ----------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "shape", "scale", "known"),
    [  # chi-square quantiles (df = 2·shape, scale 2) from the standard tables
        (0.025, 0.5, 2, 0.000982069),
        (0.975, 0.5, 2, 5.023886),
        (0.025, 5, 2, 3.246973),
        (0.975, 5, 2, 20.483177),
        (0.025, 50, 2, 74.221927),
        (0.975, 50, 2, 129.561197),
        (0.025, 1, 1, -math.log(0.975)),  # exponential: exact
        (0.975, 1, 3, -3 * math.log(0.025)),
    ],
)
def test_gamma_quantile_known_values(p, shape, scale, known):
    assert gamma_quantile(p, shape, scale) == pytest.approx(known, rel=2e-6)


@pytest.mark.parametrize("shape", [0.3, 1.0, 2.5, 11.0, 400.0, 5000.0])
def test_gamma_quantile_inverts_the_cdf(shape):
    for p in (1e-6, 0.025, 0.5, 0.975, 0.999999):
        x = gamma_quantile(p, shape)
        assert gamma_p(shape, x) == pytest.approx(p, rel=1e-9)


def test_gamma_quantile_wilson_hilferty_above_the_limit_is_continuous():
    for p in (0.025, 0.975):
        below = gamma_quantile(p, EXACT_SHAPE_LIMIT * (1 - 1e-9))
        above = gamma_quantile(p, EXACT_SHAPE_LIMIT)
        assert above == pytest.approx(below, rel=1e-7)
    assert isinstance(Estimate(1.0, 0.5, 1.5), Estimate)


# --- the generation interval ------------------------------------------------------------------


def test_default_weights_are_the_discretised_gamma():
    w = default_weights()
    assert sum(w) == pytest.approx(1.0)
    assert mean_lag(w) == pytest.approx(30.0, rel=0.01)  # 99.9 % tail cut: a bit under 30
    assert 90 < len(w) < 150
    lognormal = delay_weights_from_config("lognormal", 30.0, 0.6)
    assert mean_lag(lognormal) == pytest.approx(30.0, rel=0.01)
    assert len(lognormal) > len(w)  # heavier tail
    with pytest.raises(ValueError):
        delay_weights_from_config("weibull", 30.0, 0.6)
    with pytest.raises(ValueError):
        delay_weights_from_config("gamma", 0.0, 0.6)


@pytest.mark.parametrize(("dist", "mean", "cv"), [("gamma", 4.0, 0.6), ("lognormal", 3.0, 1.0)])
def test_discretisation_is_the_bucket_lag_distribution(dist, mean, cv):
    """w_k is the chance that a child lands k minute buckets after its parent, lag 0 folded
    into lag 1, when the parent's second within its minute is uniform."""
    rng = random.Random(1)
    n = 200_000
    lags = [0] * (MAX_LAG_MINUTES + 1)
    sigma = math.sqrt(math.log1p(cv * cv))
    for _ in range(n):
        if dist == "gamma":
            d = rng.gammavariate(1 / cv**2, mean * cv**2)
        else:
            d = rng.lognormvariate(math.log(mean) - sigma * sigma / 2, sigma)
        parent = rng.random() * 60
        lag = int((parent + d * 60) // 60)
        if lag <= MAX_LAG_MINUTES:
            lags[lag] += 1
    lags[1] += lags[0]
    w = delay_weights_from_config(dist, mean, cv)
    for k, wk in enumerate(w[:10], 1):
        assert lags[k] / n == pytest.approx(wk, abs=4 * math.sqrt(wk / n) + 1e-4)


def test_few_samples_fall_back_to_the_default():
    gi = GenerationInterval()
    assert gi.weights() == default_weights() and not gi.learned
    gi.add(5, MIN_SAMPLES - 1)
    assert gi.weights() == default_weights()
    gi.add(5)
    assert gi.learned and gi.weights() == [0, 0, 0, 0, 1.0]
    assert gi.mean_minutes == 5.0


def test_add_delays_bins_at_the_nearest_minute():
    gi = GenerationInterval()
    lags = [0.0, 29.9, 30.0, 89.9, 90.0, 150.0, MAX_LAG_MINUTES * 60 + 29, -0.5, 1e9]
    gi.add_delays(lags)
    assert gi.counts[:4] == [2, 2, 1, 1]
    assert gi.counts[MAX_LAG_MINUTES] == 1
    assert gi.samples == 7 and gi.dropped == 2  # negative and too long


def test_lag_zero_is_folded_into_lag_one_and_the_tail_is_cut():
    gi = GenerationInterval()
    gi.add(0, 300)
    gi.add(1, 100)
    gi.add(2, 400)
    assert gi.weights() == [0.5, 0.5]
    gi = GenerationInterval()
    gi.add(1, 9990)
    gi.add(300, 10)  # the last 0.1 %: cut
    assert TAIL == 0.999 and gi.weights() == [1.0]


def test_json_round_trip_and_merge():
    a, b = GenerationInterval(), GenerationInterval()
    a.add_delays([60.0 * k for k in range(1, 50)] + [-5.0])
    b.add(3, 7)
    b.add(MAX_LAG_MINUTES + 1, 2)
    for gi in (a, b):
        value = gi.to_json()
        assert GenerationInterval.from_json(value) == gi
        assert GenerationInterval.from_json(json.dumps(value)) == gi
        assert GenerationInterval.from_json(orjson.dumps(value)).samples == gi.samples
    assert b.to_json() == {"c": [0, 0, 0, 7], "d": 2}  # trailing zeros cut
    merged = GenerationInterval.from_json(a.to_json())
    merged.merge(b)
    assert merged.samples == a.samples + b.samples == 56
    assert merged.dropped == 3
    assert merged.counts[3] == a.counts[3] + 7
    assert len(orjson.dumps(merged.to_json())) < 200
    for bad in ({"c": [-1]}, {"c": [0] * (MAX_LAG_MINUTES + 2)}, {"c": [1.5]}, [1, 2], "{}x"):
        with pytest.raises(ValueError):
            GenerationInterval.from_json(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(5))
def test_window_infectiousness_is_the_sum_of_each_buckets(seed):
    rng = random.Random(seed)
    weights = default_weights()
    total = [rng.randrange(100) for _ in range(rng.randrange(1, 250))]
    for first, window in [(0, 1), (1, 60), (3, 30), (200, 60)]:
        direct = sum(infectiousness(total, weights, s) for s in range(first, first + window))
        fast = window_infectiousness(total, weights, first, window)
        assert fast == pytest.approx(direct, rel=1e-12, abs=1e-9)

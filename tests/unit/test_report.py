"""spread report: its series agree with the analysis (and the ground truth), and it writes
real PNG and HTML files."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.analyze import analyze
from pipeline.replay import Selection
from pipeline.report import build, render
from pipeline.settings import SettingsError
from tests.groundtruth import compute

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample-metoo-2017.jsonl"


@pytest.fixture(scope="module")
def analysis():
    return analyze([SAMPLE], Selection(), detail="metoo")


def test_series_agree_with_the_file(analysis):
    truth = compute([SAMPLE])
    report = build(analysis, "metoo")
    assert sum(n for _, n in report.minutes) == truth.posts["metoo"]
    steps = {b - a for (a, _), (b, _) in zip(report.minutes, report.minutes[1:], strict=False)}
    assert steps == {60}  # every minute, empty ones included
    finals = {region: series[-1][1] for region, series in report.region_cumulative.items()}
    regions = {r: n for (t, r), n in truth.region_posts.items() if t == "metoo"}
    top = sorted(regions, key=lambda r: -regions[r])[:8]
    assert {r: finals[r] for r in top} == {r: regions[r] for r in top}
    assert finals["other"] == sum(n for r, n in regions.items() if r not in top)
    for series in report.region_cumulative.values():
        assert [n for _, n in series] == sorted(n for _, n in series)  # cumulative
    first = {r: ts for (t, r), ts in truth.first_seen.items() if t == "metoo"}
    assert report.first_seen == sorted(first.items(), key=lambda kv: kv[1])
    # R_t every 10 minutes; the last point is the analysis' own estimate at its watermark.
    assert len(report.rt) > 50
    assert all(lo < mean < hi for _, mean, lo, hi in report.rt)
    assert report.summary["posts"] == f"{truth.posts['metoo']:,}"


def test_png_and_html(analysis, tmp_path):
    report = build(analysis, "metoo")
    render(report, tmp_path / "r.png")
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    render(report, tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert page.startswith("<!doctype html>") and "<svg" in page and "</html>" in page
    assert "#metoo: how it spread" in page and "regions reached" in page


def test_errors_are_one_line_settings_errors(analysis, tmp_path):
    with pytest.raises(SettingsError, match="no accepted post carries #nope"):
        build(analysis, "nope")
    with pytest.raises(SettingsError, match=r"expected a \.png or \.html"):
        render(build(analysis, "metoo"), tmp_path / "r.pdf")


def test_analyze_orders_regions_as_they_were_reached(analysis):
    timeline = analysis.signals("metoo")["timeline"]
    first = analysis.first_seen["metoo"]
    assert sorted(timeline) == sorted(first)
    assert [first[r] for r in timeline] == sorted(first.values())
    assert analysis.movements.signals("metoo")["timeline"][0] == timeline[0]

"""Hashtag extraction from text against twitter-text's conformance suite, every case."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.formats.hashtag_text import extract_hashtags

SUITE = yaml.safe_load(
    (Path(__file__).resolve().parents[1] / "data" / "twitter-text" / "hashtags.yml").read_text()
)["tests"]
CASES = [case for section in SUITE.values() for case in section]


@pytest.mark.parametrize("case", CASES, ids=[c["description"] for c in CASES])
def test_twitter_text_conformance(case):
    assert extract_hashtags(case["text"]) == case["expected"]


def test_the_suite_is_all_there():
    assert len(CASES) == 68

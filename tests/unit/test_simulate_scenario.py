"""Scenario files: the built-ins, the JSON Schema, and one-line errors that name the field."""

import json
import tomllib
from pathlib import Path

import jsonschema
import pytest

from pipeline.simulate import scenario
from pipeline.simulate.scenario import SCHEMA, ScenarioError, builtins, load, parse, plain

MINIMAL = """
[scenario]
name = "tiny"
start = "2020-01-01T00:00:00Z"
hours = 2

[movement]
tag = "Tiny"

[regions]
US = { seeds = 1, attract = 1, lang = "en" }
FR = { seeds = 1, attract = 1, lang = "fr" }

[[movement.variants]]
tag = "petit"
regions = ["FR"]
adopt = 0.5

[platforms.twitter]
kinds = { post = 1, repost = 1 }
delay = { dist = "lognormal", mean_minutes = 10, cv = 1 }

[[platforms.twitter.phases]]
hours = 1
r = 0.5
seeds_per_hour = 100
"""


def test_builtins_are_the_three_documented_scenarios():
    assert list(builtins()) == ["arab-spring-2011", "branching", "metoo-2017"]


@pytest.mark.parametrize("name", list(builtins()))
def test_every_builtin_loads_and_validates_against_the_schema(name):
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    doc = plain(tomllib.loads(builtins()[name].read_text()))
    jsonschema.validate(doc, SCHEMA)
    loaded = load(name)
    assert loaded.name == name and loaded.description


def test_the_minimal_file_is_valid_for_both_validators():
    jsonschema.validate(plain(tomllib.loads(MINIMAL)), SCHEMA)
    s = parse(MINIMAL, "tiny.toml")
    assert s.hours == 2 and s.platforms[0].phases[0].r == 0.5


def test_a_toml_datetime_is_accepted_as_the_start():
    s = parse(MINIMAL.replace('"2020-01-01T00:00:00Z"', "2020-01-01T00:00:00Z"))
    assert s.start == 1577836800.0


PHASE = "seeds_per_hour = 100"
INFLUENCER = """
[[influencers]]
platform = 'twitter'
user = 'a'
region = 'US'
hashtags = ['other']
audience = { repost = 5 }
"""
BAD = [
    # (replace this, with this, expected message part)
    ("r = 0.5", "r = -1", "field 'platforms.twitter.phases[0].r': must be >= 0"),
    ("r = 0.5", 'r = "high"', "phases[0].r': must be a number, not a string"),
    ("r = 0.5", "r = true", "phases[0].r': must be a number, not a boolean"),
    ("hours = 2", "hours = 2\ncolour = 1", "field 'scenario.colour': unknown field"),
    ('tag = "Tiny"', 'tag = ""', "field 'movement.tag': must not be empty"),
    ('dist = "lognormal"', 'dist = "weibull"', "delay.dist': must be one of lognormal, gamma"),
    ("[platforms.twitter]", "[platforms.myspace]", "'platforms.myspace': name must be one of"),
    ("US = {", "XX = {", "field 'regions.XX': name is not an ISO 3166-1 alpha-2 code"),
    ("US = {", "us = {", "field 'regions.us': name 'us' must look like 'US'"),
    ('regions = ["FR"]', 'regions = ["DE"]', "variants[0].regions[0]': 'DE' is not a key"),
    ("adopt = 0.5", "adopt = 1.5", "field 'movement.variants[0].adopt': must be <= 1"),
    ('start = "2020-01-01T00:00:00Z"', 'start = "soon"', "field 'scenario.start': 'soon'"),
    ("hours = 2\n", "", "field 'scenario.hours': missing"),
    (PHASE, "seeds_per_hour = 0\nseeds_per_hour_end = 5", "needs seeds_per_hour > 0"),
    ("hours = 1\nr", "hours = 0\nr", "phases[0].hours': must be > 0"),
    ("kinds = { post = 1, repost = 1 }", "kinds = { post = 0 }", "kinds': needs a weight > 0"),
    (
        'tag = "Tiny"',
        'tag = "Tiny"\nspellings = { "Tine" = 1 }',
        "spellings.Tine': normalises to 'tine', not 'tiny'",
    ),
    (
        PHASE,
        f"{PHASE}\n[platforms.twitter.target]\nevents = 5\nto_hours = 3",
        "target.to_hours': must be <= the scenario's hours (2)",
    ),
    (
        PHASE,
        f"{PHASE}\n[platforms.twitter.users]\npool = 5\ndistinct = 3",
        "field 'platforms.twitter.users': give either pool or distinct, not both",
    ),
    (
        PHASE,
        PHASE + INFLUENCER,
        "field 'influencers[0].hashtags': must carry the movement's tag or a variant",
    ),
]


@pytest.mark.parametrize(("old", "new", "message"), BAD)
def test_bad_files_name_the_field_and_the_problem(old, new, message):
    assert old in MINIMAL
    text = MINIMAL.replace(old, new, 1)
    with pytest.raises(ScenarioError) as caught:
        parse(text, "bad.toml")
    assert str(caught.value).startswith("scenario bad.toml: ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("old", "new", "message"), BAD[:11])
def test_the_schema_rejects_what_the_structural_checks_reject(old, new, message):
    """The checks read schema.json; jsonschema on the same file must agree on the same input
    (for the problems a schema can express)."""
    doc = plain(tomllib.loads(MINIMAL.replace(old, new, 1)))
    if "not a key" in message or "ISO 3166" in message:
        pytest.skip("a cross-reference: beyond JSON Schema, checked in code")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)


def test_toml_syntax_errors_are_one_line():
    with pytest.raises(ScenarioError, match=r"^scenario x.toml: TOML syntax: "):
        parse("a = [", "x.toml")


def test_unknown_names_and_unreadable_files(tmp_path: Path):
    with pytest.raises(ScenarioError, match=r"unknown scenario 'nope'.*metoo-2017"):
        load("nope")
    binary = tmp_path / "b.toml"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(ScenarioError, match="cannot read"):
        load(binary)


def test_the_schema_file_is_valid_json_and_shipped_next_to_the_code():
    path = Path(scenario.__file__).parent / "schema.json"
    assert json.loads(path.read_text())["title"] == "spread simulate scenario"

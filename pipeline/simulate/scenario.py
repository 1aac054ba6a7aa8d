"""Scenario files: TOML, checked against ``schema.json``, then against the rules a schema
cannot say (cross-references, sums, spellings). README "Simulator" documents every field.

The schema is the single source of the structural rules: :func:`check_schema` interprets the
subset of JSON Schema it uses, so the file shipped for editors and the checks here cannot
disagree. Every problem is one line naming the field, e.g.
``scenario my.toml: field 'platforms.twitter.phases[1].r': must be >= 0`` (indices from 0).
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from pipeline.hashtags import normalise
from pipeline.limits import DEFAULT_LIMITS
from pipeline.regions import ISO_ALPHA2

HERE = Path(__file__).parent
BUILTIN_DIR = HERE / "scenarios"
SCHEMA: dict[str, Any] = json.loads((HERE / "schema.json").read_text())
KINDS = ("post", "repost", "reply", "reaction")
PLATFORMS = ("twitter", "facebook", "instagram")


class ScenarioError(ValueError):
    """A scenario cannot be used; the message is one line meant for a user."""


@dataclass(frozen=True, slots=True)
class Phase:
    hours: float
    r: float
    seeds_per_hour: float
    seeds_per_hour_end: float | None = None  # geometric ramp to this by the phase's end


@dataclass(frozen=True, slots=True)
class Delay:
    dist: str  # "lognormal" | "gamma"
    mean_minutes: float
    cv: float


@dataclass(frozen=True, slots=True)
class Users:
    skew: float = 2.0
    pool: int | None = None
    distinct: int | None = None
    from_hours: float = 0.0
    to_hours: float | None = None


@dataclass(frozen=True, slots=True)
class Target:
    events: float
    from_hours: float
    to_hours: float
    regions: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Platform:
    name: str
    kinds: tuple[tuple[str, float], ...]
    fertility: tuple[tuple[str, float], ...]
    dispersion: float
    delay: Delay
    phases: tuple[Phase, ...]
    background_per_hour: float
    users: Users
    target: Target | None


@dataclass(frozen=True, slots=True)
class Variant:
    tag: str
    regions: tuple[str, ...]
    adopt: float
    keep_original: float


@dataclass(frozen=True, slots=True)
class Region:
    code: str
    seeds: float
    attract: float
    lang: str


@dataclass(frozen=True, slots=True)
class Influencer:
    platform: str
    id: str
    user: str
    region: str
    at_hours: float
    hashtags: tuple[str, ...]
    audience: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Background:
    vocabulary: int = 1000
    zipf: float = 1.1
    tags: tuple[str, ...] = ()
    in_posts: float = 0.0


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    start: float  # epoch seconds of hour 0
    hours: float
    tag: str
    spellings: tuple[tuple[str, float], ...]
    co_tags: tuple[tuple[str, float], ...]
    variants: tuple[Variant, ...]
    jump: float
    regions: tuple[Region, ...]
    amplitude: float
    peak_hour: float
    background: Background
    platforms: tuple[Platform, ...]
    influencers: tuple[Influencer, ...]
    source: str = ""

    @property
    def end(self) -> float:
        return self.start + self.hours * 3600.0

    def platform(self, name: str) -> Platform:
        for p in self.platforms:
            if p.name == name:
                return p
        raise KeyError(name)


# --- finding and loading ---------------------------------------------------------------------


def builtins() -> dict[str, Path]:
    """Built-in scenario names and their files, by name."""
    return {p.stem: p for p in sorted(BUILTIN_DIR.glob("*.toml"))}


def describe(path: Path) -> str:
    """The one-line description of a scenario file (``scenario.description``)."""
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    return str(doc.get("scenario", {}).get("description", ""))


def load(name_or_path: str | Path) -> Scenario:
    """A built-in scenario by name, or a scenario file."""
    known = builtins()
    if str(name_or_path) in known:
        path, label = known[str(name_or_path)], str(name_or_path)
    else:
        path, label = Path(name_or_path), str(name_or_path)
        if not path.is_file():
            names = ", ".join(known)
            raise ScenarioError(
                f"unknown scenario {label!r}: give a built-in ({names}) or a FILE.toml"
            )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"scenario {label}: cannot read: {exc}") from None
    return parse(text, label)


def parse(text: str, source: str = "<string>") -> Scenario:
    """Parse and check a scenario's TOML text; ``source`` names it in error messages."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"scenario {source}: TOML syntax: {exc}") from None
    doc = plain(doc)
    try:
        check_schema(doc)
        return _build(doc, source)
    except _Invalid as exc:
        raise ScenarioError(f"scenario {source}: field '{exc.path}': {exc.problem}") from None


def plain(value: Any) -> Any:
    """TOML's date and time values as ISO strings, so that the document is JSON data."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return value


# --- the schema interpreter ------------------------------------------------------------------


class _Invalid(Exception):
    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path or "(top level)"
        self.problem = problem


_TYPES = {
    "object": (dict, "a table"),
    "array": (list, "an array"),
    "string": (str, "a string"),
    "number": ((int, float), "a number"),
    "integer": (int, "an integer"),
    "boolean": (bool, "true or false"),
}
_TOML_NAMES = {dict: "a table", list: "an array", str: "a string", bool: "a boolean"}
_TOML_NAMES.update({int: "an integer", float: "a float"})
_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if not _KEY.match(key):
        return f"{path}[{json.dumps(key, ensure_ascii=False)}]"
    return f"{path}.{key}" if path else key


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def check_schema(value: Any, schema: dict[str, Any] | None = None, path: str = "") -> None:
    """Raise :class:`_Invalid` for the first place ``value`` breaks ``schema`` (default: the
    scenario schema). Supports the keywords the scenario schema uses."""
    root = SCHEMA if schema is None else schema
    _check(value, root, path, root)


def _check(value: Any, schema: dict[str, Any], path: str, root: dict[str, Any]) -> None:
    schema = _resolve(schema, root)
    kind = schema.get("type")
    if kind is not None:
        types, name = _TYPES[kind]
        # bool is an int in Python, and NaN is a float: neither is a number here.
        if (
            not isinstance(value, types)
            or (isinstance(value, bool) and kind != "boolean")
            or (isinstance(value, float) and math.isnan(value))
        ):
            got = _TOML_NAMES.get(type(value), type(value).__name__)
            raise _Invalid(path, f"must be {name}, not {got}")
    if "enum" in schema and value not in schema["enum"]:
        raise _Invalid(path, "must be one of " + ", ".join(map(str, schema["enum"])))
    if isinstance(value, int | float) and not isinstance(value, bool):
        for key, op, bad in (
            ("minimum", ">=", lambda v, b: v < b),
            ("exclusiveMinimum", ">", lambda v, b: v <= b),
            ("maximum", "<=", lambda v, b: v > b),
            ("exclusiveMaximum", "<", lambda v, b: v >= b),
        ):
            if key in schema and bad(value, schema[key]):
                raise _Invalid(path, f"must be {op} {_number(schema[key])}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            raise _Invalid(path, "must not be empty")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            example = schema.get("examples", [None])[0]
            like = f"like {example!r}" if example else f"match {schema['pattern']}"
            raise _Invalid(path, f"{value!r} must look {like}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            raise _Invalid(path, f"must have at least {schema['minItems']} entries")
        if "items" in schema:
            for i, item in enumerate(value):
                _check(item, schema["items"], _join(path, i), root)
    if isinstance(value, dict):
        _check_object(value, schema, path, root)


def _check_object(
    value: dict[str, Any], schema: dict[str, Any], path: str, root: dict[str, Any]
) -> None:
    if len(value) < schema.get("minProperties", 0):
        raise _Invalid(path, f"must have at least {schema['minProperties']} entries")
    for key in schema.get("required", []):
        if key not in value:
            raise _Invalid(_join(path, key), "missing")
    props = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    names = schema.get("propertyNames")
    for key, item in value.items():
        where = _join(path, key)
        if names is not None:
            try:
                _check(key, names, where, root)
            except _Invalid as exc:
                raise _Invalid(where, f"name {exc.problem}") from None
        if key in props:
            _check(item, props[key], where, root)
        elif extra is False:
            known = ", ".join(props)
            raise _Invalid(where, f"unknown field (known: {known})")
        elif isinstance(extra, dict):
            _check(item, extra, where, root)


# --- building the typed scenario, with the rules the schema cannot say ------------------------


def _when(text: str, path: str) -> float:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _Invalid(path, f"{text!r} is not an ISO time like '2017-10-15T20:21:00Z'") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _tag(text: str, path: str) -> str:
    norm = normalise(text)
    if not norm:
        raise _Invalid(path, f"{text!r} is not a hashtag once normalised")
    if len(norm) > DEFAULT_LIMITS.max_hashtag_chars:
        raise _Invalid(path, f"longer than {DEFAULT_LIMITS.max_hashtag_chars} characters")
    return norm


def _window(doc: dict[str, Any], path: str, hours: float) -> tuple[float, float]:
    lo = float(doc.get("from_hours", 0.0))
    hi = float(doc.get("to_hours", hours))
    if hi > hours:
        raise _Invalid(_join(path, "to_hours"), f"must be <= the scenario's hours ({hours:g})")
    if lo >= hi:
        raise _Invalid(_join(path, "from_hours"), f"must be < to_hours ({hi:g})")
    return lo, hi


def _known_region(code: str, path: str, regions: dict[str, Any]) -> str:
    if code not in regions:
        raise _Invalid(path, f"{code!r} is not a key of [regions]")
    return code


def _build(doc: dict[str, Any], source: str) -> Scenario:
    head = doc["scenario"]
    hours = float(head["hours"])
    regions_doc: dict[str, Any] = doc["regions"]
    regions = _regions(regions_doc, doc.get("geography", {}).get("jump", 0.0))
    movement = doc["movement"]
    tag_norm = _tag(movement["tag"], "movement.tag")
    spellings = movement.get("spellings", {movement["tag"]: 1.0})
    for written in spellings:
        where = _join("movement.spellings", written)
        if _tag(written, where) != tag_norm:
            raise _Invalid(where, f"normalises to {normalise(written)!r}, not {tag_norm!r}")
    if not sum(spellings.values()) > 0:
        raise _Invalid("movement.spellings", "needs a weight > 0")
    for co in movement.get("co_tags", {}):
        _tag(co, _join("movement.co_tags", co))
    variants = _variants(movement.get("variants", []), tag_norm, regions_doc)
    background = doc.get("background", {})
    bg_tags = tuple(background.get("tags", ()))
    for i, t in enumerate(bg_tags):
        _tag(t, f"background.tags[{i}]")
    vocabulary = int(background.get("vocabulary", max(1000, len(bg_tags))))
    if len(bg_tags) > vocabulary:
        raise _Invalid("background.tags", f"has more entries than vocabulary ({vocabulary})")
    platforms = tuple(
        _platform(name, p, f"platforms.{name}", hours, regions_doc)
        for name, p in doc["platforms"].items()
    )
    influencers = _influencers(doc.get("influencers", []), doc, hours)
    diurnal = doc.get("diurnal", {})
    return Scenario(
        name=head["name"],
        description=head.get("description", ""),
        start=_when(head["start"], "scenario.start"),
        hours=hours,
        tag=movement["tag"],
        spellings=tuple((k, float(v)) for k, v in spellings.items()),
        co_tags=tuple((k, float(v)) for k, v in movement.get("co_tags", {}).items()),
        variants=variants,
        jump=float(doc.get("geography", {}).get("jump", 0.0)),
        regions=regions,
        amplitude=float(diurnal.get("amplitude", 0.0)),
        peak_hour=float(diurnal.get("peak_hour", 0.0)),
        background=Background(
            vocabulary=vocabulary,
            zipf=float(background.get("zipf", 1.1)),
            tags=bg_tags,
            in_posts=float(background.get("in_posts", 0.0)),
        ),
        platforms=platforms,
        influencers=influencers,
        source=source,
    )


def _regions(doc: dict[str, Any], jump: float) -> tuple[Region, ...]:
    out = []
    for code, r in doc.items():
        if code not in ISO_ALPHA2:
            raise _Invalid(_join("regions", code), "name is not an ISO 3166-1 alpha-2 code")
        out.append(
            Region(
                code, float(r.get("seeds", 0.0)), float(r.get("attract", 0.0)), r.get("lang", "und")
            )
        )
    if not sum(r.seeds for r in out) > 0:
        raise _Invalid("regions", "at least one region needs seeds > 0")
    if jump > 0 and not sum(r.attract for r in out) > 0:
        raise _Invalid("regions", "geography.jump > 0 needs a region with attract > 0")
    return tuple(out)


def _variants(
    docs: list[dict[str, Any]], tag_norm: str, regions: dict[str, Any]
) -> tuple[Variant, ...]:
    out = []
    adopted: dict[str, float] = {}
    for i, v in enumerate(docs):
        path = f"movement.variants[{i}]"
        if _tag(v["tag"], f"{path}.tag") == tag_norm:
            raise _Invalid(f"{path}.tag", "is the movement's own tag")
        codes = tuple(
            _known_region(c, f"{path}.regions[{j}]", regions) for j, c in enumerate(v["regions"])
        )
        for code in codes:
            adopted[code] = adopted.get(code, 0.0) + v["adopt"]
            if adopted[code] > 1 + 1e-9:
                raise _Invalid(
                    f"{path}.adopt",
                    f"the variants of region {code} add up to {adopted[code]:g}; must be <= 1",
                )
        out.append(Variant(v["tag"], codes, float(v["adopt"]), float(v.get("keep_original", 0))))
    return tuple(out)


def _platform(
    name: str, doc: dict[str, Any], path: str, hours: float, regions: dict[str, Any]
) -> Platform:
    kinds = tuple((k, float(doc["kinds"].get(k, 0.0))) for k in KINDS)
    if not sum(w for _, w in kinds) > 0:
        raise _Invalid(f"{path}.kinds", "needs a weight > 0")
    fert_doc = doc.get("fertility", dict.fromkeys(KINDS, 1.0))
    fertility = tuple((k, float(fert_doc.get(k, 0.0))) for k in KINDS)
    phases = []
    for i, ph in enumerate(doc["phases"]):
        end = ph.get("seeds_per_hour_end")
        if end is not None and ph["seeds_per_hour"] <= 0:
            raise _Invalid(
                f"{path}.phases[{i}].seeds_per_hour_end", "needs seeds_per_hour > 0 to ramp from"
            )
        rates = (float(ph["seeds_per_hour"]), None if end is None else float(end))
        phases.append(Phase(float(ph["hours"]), float(ph["r"]), *rates))
    target = None
    if "target" in doc:
        t = doc["target"]
        lo, hi = _window(t, f"{path}.target", hours)
        codes = t.get("regions")
        if codes is not None:
            codes = tuple(
                _known_region(c, f"{path}.target.regions[{j}]", regions)
                for j, c in enumerate(codes)
            )
        if not any(p.seeds_per_hour > 0 for p in phases):
            raise _Invalid(f"{path}.target", "needs a phase with seeds_per_hour > 0 to scale")
        target = Target(float(t["events"]), lo, hi, codes)
    u = doc.get("users", {})
    if "pool" in u and "distinct" in u:
        raise _Invalid(f"{path}.users", "give either pool or distinct, not both")
    lo, hi = _window(u, f"{path}.users", hours)
    users = Users(
        skew=float(u.get("skew", 2.0)),
        pool=u.get("pool", None if "distinct" in u else 1_000_000),
        distinct=u.get("distinct"),
        from_hours=lo,
        to_hours=hi,
    )
    d = doc["delay"]
    return Platform(
        name=name,
        kinds=kinds,
        fertility=fertility,
        dispersion=float(doc.get("dispersion", 1.0)),
        delay=Delay(d["dist"], float(d["mean_minutes"]), float(d["cv"])),
        phases=tuple(phases),
        background_per_hour=float(doc.get("background_per_hour", 0.0)),
        users=users,
        target=target,
    )


def _influencers(docs: list[dict[str, Any]], doc: dict[str, Any], hours: float) -> tuple:
    out = []
    seen: set[str] = set()
    for i, inf in enumerate(docs):
        path = f"influencers[{i}]"
        if inf["platform"] not in doc["platforms"]:
            raise _Invalid(f"{path}.platform", f"{inf['platform']!r} is not in [platforms]")
        region = _known_region(inf["region"], f"{path}.region", doc["regions"])
        at = float(inf.get("at_hours", 0.0))
        if at >= hours:
            raise _Invalid(f"{path}.at_hours", f"must be < the scenario's hours ({hours:g})")
        audience = tuple((k, int(inf["audience"].get(k, 0))) for k in KINDS)
        if not sum(n for _, n in audience) > 0:
            raise _Invalid(f"{path}.audience", "needs a count > 0")
        ident = inf.get("id", f"inf-{i}")
        if ident in seen:
            raise _Invalid(f"{path}.id", f"{ident!r} is used twice")
        seen.add(ident)
        tags = tuple(inf.get("hashtags", [doc["movement"]["tag"]]))
        written = {_tag(t, f"{path}.hashtags[{j}]") for j, t in enumerate(tags)}
        names = [doc["movement"]["tag"]] + [v["tag"] for v in doc["movement"].get("variants", [])]
        if not written & {normalise(n) for n in names}:
            raise _Invalid(f"{path}.hashtags", "must carry the movement's tag or a variant")
        out.append(Influencer(inf["platform"], ident, inf["user"], region, at, tags, audience))
    return tuple(out)

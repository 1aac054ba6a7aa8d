"""Movements: one cause spread under several hashtags, counted as one.

A movement is a named family of hashtags (by default ``metoo`` and its language variants,
DESIGN "Scenarios"). Stage 1 counts it like one more hashtag carried by every event that has
at least one tag of the family, under the key ``#`` + name: an event with ``#MeToo`` and
``#MoiAussi`` counts **once** for the movement, in its region and minute, so a movement's
totals, regions, first-seen times and rates are exact and flow through the same tables,
changelogs and redelivery checks as a hashtag's. No normalised hashtag starts with ``#``
(:func:`pipeline.hashtags.normalise` strips it), so the keys cannot collide; they are exported
as ``movement_*`` series with a ``movement`` label, never as ``hashtag_*``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pipeline.hashtags import distinct
from pipeline.settings import SettingsError

PREFIX = "#"

DEFAULT: dict[str, tuple[str, ...]] = {
    "metoo": (
        "metoo",
        "balancetonporc",
        "yotambien",
        "وأنا_كمان",
        "وانا_ايضا",
        "quellavoltache",
        "moiaussi",
    )
}


def key(name: str) -> str:
    return PREFIX + name


def is_key(tag: str) -> bool:
    return tag.startswith(PREFIX)


def name_of(k: str) -> str:
    return k[len(PREFIX) :]


def index(movements: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """Normalised tag → movement key: what stage 1 looks up for every tag it counts."""
    out: dict[str, str] = {}
    for name, tags in movements.items():
        for tag in distinct(tags):
            out.setdefault(tag, key(name))
    return out


def parse(specs: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """``NAME=tag,tag,...`` (repeatable). A name is a label value: letters, digits, ``_-.``."""
    out: dict[str, tuple[str, ...]] = {}
    for spec in specs:
        name, sep, tags = spec.partition("=")
        name = name.strip()
        members = tuple(distinct(tags.split(",")))
        if not sep or not name or not members:
            raise SettingsError(f"--movement {spec!r}: expected NAME=tag,tag,...")
        if not all(c.isalnum() or c in "_-." for c in name):
            raise SettingsError(f"--movement {spec!r}: a name is letters, digits, '_', '-', '.'")
        out[name] = members
    return out

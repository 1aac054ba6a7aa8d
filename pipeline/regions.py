"""Regions: ISO 3166-1 alpha-2 country codes, ``ZZ`` when unknown."""

from __future__ import annotations

from typing import Any

import pycountry

UNKNOWN = "ZZ"

# Built once: validation sits on the hot path and a set lookup is all it needs.
ISO_ALPHA2: frozenset[str] = frozenset(c.alpha_2 for c in pycountry.countries)


def normalise(region: Any) -> str:
    """Upper-cased ISO 3166-1 alpha-2 code, or ``ZZ`` for anything missing or unknown."""
    if isinstance(region, str):
        code = region.strip().upper()
        if code in ISO_ALPHA2:
            return code
    return UNKNOWN

"""Hashtag normalisation.

One rule, applied everywhere (ingest, ground truth in tests, analysis): Unicode NFKC, then
casefold, then every leading ``#`` or ``＃`` removed. ``#MeToo``, ``METOO`` and ``ＭｅＴｏｏ``
are all ``metoo``; Arabic and other scripts keep their letters (NFKC only folds
compatibility forms). A tag that is empty after normalisation is not a hashtag and is dropped.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

_LEADING = "#＃"


def normalise(tag: str) -> str:
    """Return the canonical form of one hashtag ('' when nothing is left)."""
    return unicodedata.normalize("NFKC", tag).casefold().lstrip(_LEADING)


def distinct(tags: Iterable[str]) -> list[str]:
    """Distinct non-empty normalised tags, in first-seen order (a post counts once per tag)."""
    seen: dict[str, None] = {}
    for tag in tags:
        norm = normalise(tag)
        if norm:
            seen[norm] = None
    return list(seen)

"""Hashtag normalisation.

One rule, applied everywhere (ingest, ground truth in tests, analysis): Unicode NFKC, then
casefold, then invisible characters removed, then surrounding whitespace and every leading
``#`` or ``＃`` removed. ``#MeToo``, ``METOO`` and ``ＭｅＴｏｏ`` are all ``metoo``; Arabic and
other scripts keep their letters (NFKC only folds compatibility forms). A tag that is empty
after normalisation is not a hashtag and is dropped.

Invisible characters are control characters (Unicode category Cc), bidirectional controls
(U+061C, U+200E-F, U+202A-E, U+2066-9), zero-width space, word joiner, soft hyphen and
byte-order mark: none can be typed into a platform's hashtag, and they would make one tag
look like another (``met\u200boo`` would show as ``metoo``) or reorder a dashboard's text.
Zero-width (non-)joiners U+200C/D are kept: Persian and Indic spellings and emoji need them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

_LEADING = "#＃"

_INVISIBLE = [*range(0x00, 0x20), *range(0x7F, 0xA0), 0xAD, 0x061C, 0x200B, 0x200E, 0x200F]
_INVISIBLE += [*range(0x202A, 0x202F), 0x2060, *range(0x2066, 0x206A), 0xFEFF]
_REMOVE = dict.fromkeys(_INVISIBLE)


def normalise(tag: str) -> str:
    """Return the canonical form of one hashtag ('' when nothing is left)."""
    folded = unicodedata.normalize("NFKC", tag).casefold().translate(_REMOVE)
    return folded.strip().lstrip(_LEADING).strip()


def distinct(tags: Iterable[str]) -> list[str]:
    """Distinct non-empty normalised tags, in first-seen order (a post counts once per tag)."""
    seen: dict[str, None] = {}
    for tag in tags:
        norm = normalise(tag)
        if norm:
            seen[norm] = None
    return list(seen)

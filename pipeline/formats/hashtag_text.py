"""Hashtags in free text, by Twitter's rules (twitter-text's ``extractHashtags``).

For CSV dumps that have the post's text but no hashtag column. A port of twitter-text's
``validHashtag`` expression as a scanner over code points: a ``#`` or ``＃`` not preceded by a
letter, mark, digit, underscore or ``&`` (emoji variation selectors count as a boundary), not
followed by U+FE0F or U+20E3 (keycap emoji), then letters, marks, digits, ``_`` and a few
joiners, with at least one letter or mark; a tag directly followed by another hash sign or
``://`` is not a hashtag, nor is one inside a URL. Checked against every hashtag case of
twitter-text's conformance suite (tests/data/twitter-text).
"""

from __future__ import annotations

import re
import unicodedata

HASH = "#＃"
SPECIAL = set(
    "_\u200c\u200d\ua67e\u05be\u05f3\u05f4\uff5e\u301c\u309b\u309c\u30a0\u30fb\u3003\u0f0b\u0f0c\xb7"
)
# URLs with a scheme, or a bare domain with a path ("twitter.com/#hashtag"): a fragment is not
# a hashtag. (twitter-text's own URL extractor is far larger; this covers its hashtag cases.)
URL = re.compile(r"(?:https?://|www\.)\S+|\b(?:[a-z0-9-]+\.)+[a-z]{2,}/\S*", re.IGNORECASE)


def _alpha(c: str) -> bool:
    return unicodedata.category(c)[0] in "LM"


def _alnum(c: str) -> bool:
    return c in SPECIAL or unicodedata.category(c) in ("Nd",) or _alpha(c)


def extract_hashtags(text: str) -> list[str]:
    """Hashtags of ``text`` as written (without the hash sign), in order."""
    if not text or not any(h in text for h in HASH):
        return []
    urls = [m.span() for m in URL.finditer(text)]
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] not in HASH:
            i += 1
            continue
        prev = text[i - 1] if i else ""
        if prev and prev not in "\ufe0e\ufe0f" and (_alnum(prev) or prev == "&"):
            i += 1
            continue
        start = i + 1
        if start < n and text[start] in "\ufe0f\u20e3":
            i += 1
            continue
        end, letters = start, False
        while end < n and _alnum(text[end]):
            letters = letters or _alpha(text[end])
            end += 1
        if end > start and letters:
            after = text[end : end + 3]
            inside_url = any(a <= i < b for a, b in urls)
            if not (after[:1] in HASH and after[:1]) and after != "://" and not inside_url:
                out.append(text[start:end])
            i = end
            continue
        i += 1
    return out

"""Replay file formats, one module per format.

Every converting format has ``looks_like(first_object) -> bool`` (for ``--format auto``) and
``convert(line) -> list[bytes]`` (native event lines; raises ``ConvertError`` for a line that
is broken, returns ``[]`` for one that is valid but holds no post). ``native`` lines are not
converted: the worker judges them.
"""

from __future__ import annotations

from types import ModuleType

from pipeline.formats import bluesky, mastodon, twitter_v1, twitter_v2

# Detection tries them in this order: a v1.1 tweet would also pass v2's looser test.
CONVERTERS: dict[str, ModuleType] = {
    "twitter-v1": twitter_v1,
    "twitter-v2": twitter_v2,
    "mastodon": mastodon,
    "bluesky": bluesky,
}
FORMATS = ("auto", "native", *CONVERTERS, "csv")  # csv is row-based: pipeline.formats.tabular

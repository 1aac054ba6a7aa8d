"""Posts per hashtag over the newest minutes of event time, kept up to date as buckets are
written, so that ranking by trend score never has to visit the long tail.

Why this bound is enough: a trend score (:mod:`pipeline.virality.trend`) is
``(x − μ) / sqrt((σ² + μ + 1) / CURRENT)`` with ``x = c / CURRENT`` for the ``c`` posts of its
newest ``CURRENT`` minutes and ``μ, σ² ≥ 0``, so it is at most ``c / sqrt(CURRENT)``
(:func:`score_bound`), and at most 0 when ``c = 0``. :class:`RecentPosts` keeps ``c`` (over a
span at least that long) for every tag with posts in it and groups the tags by it; a ranker
reads the most active groups first and stops at the first group whose bound is below the
``k``-th best score found (:func:`pipeline.virality.topk.top_active`).

Minutes are epoch seconds of closed-open ``[m, m + 60)`` buckets, as everywhere else.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

from pipeline.virality.trend import CURRENT

# Twice the score's window: the bound stays valid while the minute the ranker's watermark is in
# trails the newest minute written here by up to CURRENT minutes (stage 2 applies deltas from
# every worker's partitions, the watermark is this worker's own).
SPAN_MINUTES = 2 * CURRENT


def score_bound(posts: int) -> float:
    """The highest trend score a tag with ``posts`` posts in the span can have."""
    return posts / math.sqrt(CURRENT)


class RecentPosts:
    """``tag -> posts`` over the newest ``span_minutes`` minute buckets written, the newest
    being the latest minute ever added. Adding to an older minute than that is ignored; a newer
    one moves the span and forgets the minutes that fall out of it.

    Memory follows the (tag, minute) pairs of the span, not the tags ever seen. Each add costs
    a few dict and set operations.
    """

    def __init__(self, span_minutes: int = SPAN_MINUTES) -> None:
        self.span = span_minutes * 60
        self.newest: int | None = None
        self._minutes: dict[int, dict[str, int]] = {}
        self._posts: dict[str, int] = {}
        self._by_posts: dict[int, set[str]] = {}

    def add(self, tag: str, minute: int, posts: int) -> None:
        if posts <= 0:
            return
        newest = self.newest
        if newest is None or minute > newest:
            self._advance(minute)
        elif minute <= newest - self.span:
            return
        per_tag = self._minutes.get(minute)
        if per_tag is None:
            per_tag = self._minutes[minute] = {}
        per_tag[tag] = per_tag.get(tag, 0) + posts
        self._move(tag, posts)

    def add_many(self, posts_at: Mapping[int, Mapping[str, int]]) -> None:
        """:meth:`add` of every ``minute -> tag -> posts`` (posts > 0, as a bucket's are), in
        one pass and one move per tag.

        The end state of a series of adds does not depend on their order: a minute is kept
        when it is within the span of the newest minute ever added, whichever came first.
        So the span moves once, to the newest minute here, and the rest is summed."""
        if not posts_at:
            return
        newest = max(posts_at)
        if self.newest is None or newest > self.newest:
            self._advance(newest)
        oldest = self.newest - self.span  # type: ignore[operator]
        change: dict[str, int] = {}
        minutes = self._minutes
        for minute, tags in posts_at.items():
            if minute <= oldest:
                continue
            per_tag = minutes.get(minute)
            if per_tag is None:
                per_tag = minutes[minute] = {}
            for tag, posts in tags.items():
                if posts > 0:
                    per_tag[tag] = per_tag.get(tag, 0) + posts
                    change[tag] = change.get(tag, 0) + posts
        for tag, posts in change.items():
            self._move(tag, posts)

    def posts(self, tag: str) -> int:
        return self._posts.get(tag, 0)

    def __len__(self) -> int:
        return len(self._posts)

    def groups(self) -> Iterator[tuple[int, set[str]]]:
        """``(posts, tags)`` from the most posts down; the sets are live: read them before
        adding again."""
        for posts in sorted(self._by_posts, reverse=True):
            tags = self._by_posts.get(posts)
            if tags:
                yield posts, tags

    def clear(self) -> None:
        self.newest = None
        self._minutes.clear()
        self._posts.clear()
        self._by_posts.clear()

    def _move(self, tag: str, change: int) -> None:
        old = self._posts.get(tag, 0)
        new = old + change
        if old:
            group = self._by_posts[old]
            group.discard(tag)
            if not group:
                del self._by_posts[old]
        if new > 0:
            self._posts[tag] = new
            group = self._by_posts.get(new)
            if group is None:
                group = self._by_posts[new] = set()
            group.add(tag)
        else:
            del self._posts[tag]

    def _advance(self, minute: int) -> None:
        self.newest = minute
        oldest = minute - self.span
        for m in [m for m in self._minutes if m <= oldest]:
            for tag, n in self._minutes.pop(m).items():
                self._move(tag, -n)

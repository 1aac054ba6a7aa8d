import heapq
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.ordering import OrderStats, merge, reorder, sort_all


def timed(*ts):
    return [(t, f"{t}".encode()) for t in ts]


def test_disorder_within_the_buffer_is_repaired():
    stats = OrderStats()
    out = [t for t, _ in reorder(timed(3, 1, 2, 6, 4, 5), buffer=3, stats=stats)]
    assert out == [1, 2, 3, 4, 5, 6] and stats.out_of_order == 0


def test_disorder_past_the_buffer_is_counted_and_kept():
    stats = OrderStats()
    out = [t for t, _ in reorder(timed(5, 6, 7, 8, 1), buffer=2, stats=stats)]
    assert sorted(out) == [1, 5, 6, 7, 8] and stats.out_of_order == 1


def test_untimed_lines_pass_through_and_sort_keeps_everything():
    items = [(3.0, b"c"), (None, b"bad"), (1.0, b"a")]
    assert [line for _, line in reorder(items, 10, OrderStats())] == [b"bad", b"a", b"c"]
    assert [line for _, line in sort_all(items)] == [b"bad", b"a", b"c"]


def test_files_merge_in_event_time():
    merged = merge([timed(1, 4, 9), timed(2, 3, 10), timed(5)])
    assert [t for t, _ in merged] == [1, 2, 3, 4, 5, 9, 10]


def one_heap(items, buffer):
    """The reference: every buffered event in one min-heap on (ts, arrival)."""
    heap, seq, last, out, late = [], itertools.count(), float("-inf"), [], 0
    for ts, line in items:
        if ts is None or ts < last:
            late += ts is not None
            out.append((ts, line))
            continue
        heapq.heappush(heap, (ts, next(seq), line))
        if len(heap) > buffer:
            last, _, popped = heapq.heappop(heap)
            out.append((last, popped))
    out.extend((ts, line) for ts, _, line in sorted(heap))
    return out, late


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.integers(0, 30).map(float)), max_size=120),
    st.integers(1, 12),
)
def test_reorder_gives_what_one_heap_of_the_buffer_gives(times, buffer):
    # Small integer times: many ties and runs, and disorder both within the buffer and past it.
    items = [(ts, f"{i}".encode()) for i, ts in enumerate(times)]
    stats = OrderStats()
    out = list(reorder(items, buffer, stats))
    assert (out, stats.out_of_order) == one_heap(items, buffer)

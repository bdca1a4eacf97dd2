"""What a decode costs on this host: one stream reading k tokens at once, logits on
every row, timed after whatever the stream holds and then forgotten again.

The speculative loop plans its runs with these figures (`decoding.draft_costs`): on a
CPU a batch of k tokens costs far less than k decodes, by how much depends on the
model (a large vocabulary makes every row's output layer costly) and on the host.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

from .context import Row
from .stream import Stream


def time_rows(
    stream: Stream, counts: Sequence[int], filler: Sequence[int], repeats: int = 3
) -> list[float]:
    """Median seconds of one decode of k tokens (logits on every row), for each k.

    The tokens go after what the stream has evaluated, in the stream's own sequence,
    and are removed again: the stream is left as it was. filler: token ids to decode
    (their values do not change the cost); at least max(counts) of them.
    """
    context, seq, start = stream.context, stream.seq, len(stream.tokens)
    longest = max(counts)
    if longest > min(context.n_outputs, context.n_batch) or len(filler) < longest:
        raise ValueError(f"cannot time {longest} rows in one decode of this stream")
    if start + longest > stream.n_ctx:
        raise ValueError("the stream's context has no room left to time decodes")

    def decode(k: int) -> float:
        return _timed_decode(
            context, [Row(int(t), start + i, seq, True) for i, t in enumerate(filler[:k])]
        )

    decode(1)  # the first decode after loading pays for page faults
    return [statistics.median(decode(k) for _ in range(repeats)) for k in counts]


def time_together(streams: Sequence[Stream], filler: Sequence[int], repeats: int = 3) -> float:
    """Median seconds of one decode holding one token of each stream (streams of one
    context: both roles of a pair on one model), logits on each; left as they were."""
    context = streams[0].context
    if any(stream.context is not context for stream in streams):
        raise ValueError("the streams do not share a context")
    starts = [len(stream.tokens) for stream in streams]
    rows = [
        Row(int(filler[i]), start, stream.seq, True)
        for i, (stream, start) in enumerate(zip(streams, starts, strict=True))
    ]
    _timed_decode(context, rows)  # as in time_rows: the first pays for page faults
    return statistics.median(_timed_decode(context, rows) for _ in range(repeats))


def _timed_decode(context, rows: list[Row]) -> float:
    """Seconds of one decode of `rows`; their cells are removed again afterwards."""
    began = time.perf_counter()
    try:
        context.decode(rows)
    finally:
        for seq in {row.seq for row in rows}:
            context.remove(seq, min(row.pos for row in rows if row.seq == seq))
    return time.perf_counter() - began

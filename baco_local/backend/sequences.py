"""Several token sequences in one context, decoded together.

n answers to one prompt share a Stream's context: the prompt is read once on the
stream's own sequence (reusing whatever the cache already holds, as a single answer
would) and copied by reference to the next n-1 sequence ids (`llama_memory_seq_cp`;
the KV buffer is unified, so nothing is duplicated). From there each answer has its
own tokens. `decode(seqs)` reads the pending tokens of the given answers in one batch
(a row per token) and computes logits only for each answer's last token; `rows(seqs)`
is then a (k, n_vocab) float32 array of those logits. When both roles of a pair run on
one model, their views share one context and `decode_together` reads both in one batch.

A finished answer is dropped, which frees its cells. `close()` drops every answer but
the first, which the stream keeps as its single sequence, so the next generation
reuses its prompt.
"""

from __future__ import annotations

import threading

import numpy as np

from ..errors import Cancelled
from .context import Row
from .stream import Stream


class Sequences:
    """n answers over one Stream's context, all starting from one prompt: answer i is
    the context's sequence stream.seq + i.

    tokens(i): everything in answer i's sequence, evaluated or pending, prompt included.
    """

    def __init__(self, stream: Stream, n: int, room: int | None = None):
        room = stream.n_seq_max - stream.seq if room is None else room
        if not 1 <= n <= room:
            raise ValueError(f"{n} sequences, but the context holds {room} from {stream.seq}")
        self.stream = stream
        self.context = stream.context
        self.n = n
        self.room = room  # sequence ids stream.seq .. stream.seq + room - 1 are this view's
        self._first = stream.seq
        self._done: list[list[int]] = [[] for _ in range(n)]  # evaluated tokens
        self._pending: list[list[int]] = [[] for _ in range(n)]
        self._row: list[int | None] = [None] * n  # index into the last output, or -1: first row
        self._first_row: np.ndarray | None = None  # the prompt's logits, shared by all
        self._output: np.ndarray | None = None
        self._live = [False] * n
        self.prompt_length = 0

    # --- starting ----------------------------------------------------------------------

    def start(
        self, prompt: list[int], *, fixed: int = 0, store=None, stop: threading.Event | None = None
    ) -> None:
        """Read `prompt` once (on the stream's sequence, reusing the cache) and give it to
        all n answers."""
        stream = self.stream
        stream.start(prompt, fixed=fixed, store=store)
        stream.catch_up(stop)
        self._first_row = np.array(stream.logits(), dtype=np.float32, copy=True)
        for i in range(1, self.room):
            self.context.remove(self._first + i)
        for i in range(1, self.n):
            self.context.copy(self._first, self._first + i)
        self.prompt_length = len(prompt)
        for i in range(self.n):
            self._done[i] = list(prompt)
            self._pending[i] = []
            self._row[i] = -1
            self._live[i] = True
        stream.tokens = list(prompt)  # the stream's sequence is managed here until close()
        stream.pending = []

    # --- tokens ------------------------------------------------------------------------

    def tokens(self, i: int) -> list[int]:
        return self._done[i] + self._pending[i]

    def tail(self, i: int, n: int) -> list[int]:
        """The last n tokens of answer i (fewer if it has fewer), without copying the rest."""
        pending = self._pending[i]
        if n <= len(pending):
            return pending[len(pending) - n :]
        done = self._done[i]
        return done[max(len(done) - (n - len(pending)), 0) :] + pending

    def pending_count(self, i: int) -> int:
        """Tokens pushed to answer i and not yet read."""
        return len(self._pending[i])

    def length(self, i: int) -> int:
        return len(self._done[i]) + len(self._pending[i])

    def cells_used(self) -> int:
        """KV cells the live answers hold (the shared prompt counted once)."""
        return self.prompt_length + sum(
            self.length(i) - self.prompt_length for i in range(self.n) if self._live[i]
        )

    def push(self, i: int, tokens: list[int]) -> None:
        """Append tokens to answer i; they are read at its next decode."""
        if tokens:
            self._pending[i].extend(tokens)
            self._row[i] = None

    def truncate(self, i: int, length: int) -> None:
        """Keep the first `length` tokens of answer i (evaluated or pending)."""
        done = self._done[i]
        if length < len(done):
            self.context.remove(self._first + i, length)
            del done[length:]
            self._pending[i] = []
        else:
            del self._pending[i][length - len(done) :]
        self._row[i] = None

    def drop(self, i: int) -> None:
        """Answer i is finished: free its cells (the first answer keeps its tokens)."""
        self._live[i] = False
        self._row[i] = None
        if i != 0:
            self.context.remove(self._first + i)

    # --- reading -----------------------------------------------------------------------

    def ready(self, i: int) -> bool:
        """True when answer i's next-token logits can be read without a decode."""
        return self._row[i] is not None

    def decode(self, answers: list[int], stop: threading.Event | None = None) -> None:
        """Read the pending tokens of these answers in as few decodes as the batch allows;
        afterwards each of them is ready. Every other answer's row becomes stale (one
        asked for again with nothing pending reads its last token again)."""
        decode_together([(self, answers)], stop)

    def _plan(self, answers: list[int]) -> tuple[list[Row], list[Row], list[int]]:
        """(rows before each answer's last token, the last rows, the answers decoded)."""
        todo = [i for i in answers if self._pending[i] or self._row[i] is None]
        for i in todo:
            if not self._pending[i]:  # its row went stale with a decode of others: read
                self.context.remove(self._first + i, len(self._done[i]) - 1)  # its last
                self._pending[i] = [self._done[i].pop()]  # token again
        body, heads = [], []
        for i in todo:
            pending, start = self._pending[i], len(self._done[i])
            for k, token in enumerate(pending):
                row = Row(token, start + k, self._first + i, k == len(pending) - 1)
                (heads if row.logits else body).append(row)
        return body, heads, todo

    def _forget_pending(self, todo: list[int]) -> None:
        """A decode failed: the pending tokens' cells are gone (Context.decode), and so is
        every row."""
        for i in range(self.n):
            if self._row[i] != -1 or i in todo:
                self._row[i] = None

    def _read(self, todo: list[int], first_output: int) -> None:
        """The decode of `todo`'s pending tokens happened; their rows start at first_output."""
        self._forget_pending(todo)  # rows of the last output go stale; the prompt's stays
        for row, i in enumerate(todo):
            self._done[i].extend(self._pending[i])
            self._pending[i] = []
            self._row[i] = first_output + row
        self._output = self.context.output_rows()

    def rows(self, answers: list[int]) -> np.ndarray:
        """The next-token logits of each answer: shape (len(answers), n_vocab), float32.

        A view of llama.cpp's buffer when the rows are in output order (read it, never
        write it; valid until the next decode), else a copy.
        """
        index = []
        for i in answers:
            row = self._row[i]
            if row is None:
                raise RuntimeError(f"answer {i} has no logits: decode it first")
            index.append(row)
        if -1 in index:  # the prompt's row, before any decode
            output = self._output
            return np.stack([self._first_row if j == -1 else output[j] for j in index])
        if index == list(range(index[0], index[0] + len(index))):
            return self._output[index[0] : index[0] + len(index)]
        return self._output[index]

    def close(self) -> None:
        """Drop every answer but the first, which the stream keeps as its sequence."""
        for i in range(1, self.n):
            self.context.remove(self._first + i)
        stream = self.stream
        stream.tokens = list(self._done[0])
        stream.pending = []
        stream._logits = None
        stream._prompt_end = 0
        stream._fixed_end = 0
        self._output = None


def decode_together(jobs: list[tuple[Sequences, list[int]]], stop=None) -> None:
    """Decode the pending tokens of one or more views' answers, all in one context: the
    rows before each answer's last token first (n_batch at a time), then every last
    token, with logits, in the final decode (llama.cpp keeps the last decode's logits
    only). Two views share a context when both roles of a pair run on one model."""
    plans = [(view, *view._plan(answers)) for view, answers in jobs]
    body = [row for _, rows, _, _ in plans for row in rows]
    heads = [row for _, _, rows, _ in plans for row in rows]
    if not heads:
        return
    context = jobs[0][0].context
    n_batch = context.n_batch
    chunks = [body[i : i + n_batch] for i in range(0, len(body), n_batch)]
    if chunks and len(chunks[-1]) + len(heads) <= n_batch:
        chunks[-1] = chunks[-1] + heads
    else:
        chunks.append(heads)
    try:
        for chunk in chunks:
            if stop is not None and stop.is_set():
                raise Cancelled()
            context.decode(chunk)
    except BaseException:
        for view, _, _, todo in plans:
            for i in todo:  # what was read stays read; drop the rest of the pending cells
                view.context.remove(view._first + i, len(view._done[i]))
            view._forget_pending(todo)
        raise
    first_output = 0
    for view, _, _, todo in plans:
        view._read(todo, first_output)
        first_output += len(todo)

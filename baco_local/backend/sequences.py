"""Several token sequences in one context, decoded together.

n answers to one prompt share a Stream's context: the prompt is read once on the
stream's own sequence (reusing whatever the cache already holds, as a single answer
would) and copied by reference to the next n-1 sequence ids (`llama_memory_seq_cp`;
the KV buffer is unified, so nothing is duplicated). From there each answer has its
own tokens. `decode(seqs)` reads the pending tokens of the given answers in one batch
(a row per token) and computes logits only for each answer's last token; `rows(seqs)`
is then a (k, n_vocab) float32 array of those logits. `decode(seqs, every=...)` also
computes logits after every pending token of some answers (a drafted run, scored at
once); `run_rows(seq)` then holds one row per position of the run. When both roles of a pair run on
one model, their views share one context and `decode_together` reads both in one batch.

A finished answer is dropped, which frees its cells. `close()` drops every answer but
the first, which the stream keeps as its single sequence, so the next generation
reuses its prompt.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

import numpy as np

from ..errors import Cancelled
from .context import Row
from .stream import Stream


class Sequences:
    """n answers over one Stream's context, all starting from one prompt: answer i is
    the context's sequence stream.seq + i.

    tokens(i): everything in answer i's sequence, evaluated or pending, prompt included.
    """

    def __init__(
        self,
        stream: Stream,
        n: int,
        room: int | None = None,
        exact_runs: bool = False,
        one_token_per_decode: bool = False,
    ):
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
        # the last every-row decode of each answer: its rows, each an index into the last
        # output or a copy (the row the answer had when that decode began comes first)
        self._run: list[list[int | np.ndarray] | None] = [None] * n
        # exact_runs: a run is scored one token per decode, so its rows are bit for bit
        # those of tokens read one at a time (llama.cpp's batched rows may differ in
        # rounding); slower, for checking
        self.exact_runs = exact_runs
        # one_token_per_decode: an answer's pending tokens are read one per decode (the
        # earlier ones in decodes of their own, aligned to end with the last), as if
        # each had been read as soon as it was written: rows do not depend on when an
        # answer caught up (llama.cpp's rows depend on how tokens are batched)
        self.one_token_per_decode = one_token_per_decode
        self._run_alone = False
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
        if tokens:  # the row after its last evaluated token stays (a run scored later
            self._pending[i].extend(tokens)  # may begin with it), but it is not ready
            self._run[i] = None

    def truncate(self, i: int, length: int) -> None:
        """Keep the first `length` tokens of answer i (evaluated or pending)."""
        done = self._done[i]
        if length < len(done):
            self.context.remove(self._first + i, length)
            del done[length:]
            self._pending[i] = []
            self._row[i] = None
        else:
            del self._pending[i][length - len(done) :]
        self._run[i] = None

    def drop(self, i: int) -> None:
        """Answer i is finished: free its cells (the first answer keeps its tokens)."""
        self._live[i] = False
        self._row[i] = None
        self._run[i] = None
        if i != 0:
            self.context.remove(self._first + i)

    # --- reading -----------------------------------------------------------------------

    def ready(self, i: int) -> bool:
        """True when answer i's next-token logits can be read without a decode."""
        return not self._pending[i] and self._row[i] is not None

    def decode(
        self,
        answers: list[int],
        stop: threading.Event | None = None,
        every: Mapping[int, int] | None = None,
    ) -> None:
        """Read the pending tokens of these answers in as few decodes as the batch allows;
        afterwards each of them is ready. Every other answer's row becomes stale (one
        asked for again with nothing pending reads its last token again).

        every: answers (among these) whose every pending token gets logits, all in the
        final decode, with the rows each needs (`run_rows` then gives them; when it needs
        one more than it has tokens pending, its last token is read again if its row
        went stale). Their rows must fit one decode.
        """
        decode_together([(self, answers, every or {})], stop)

    def scored(self, i: int) -> bool:
        """True when answer i's run rows can be read without a decode: its last decode
        scored a run (nothing pushed since), or nothing is pending and its row is fresh."""
        return self._run[i] is not None or self.ready(i)

    def _plan(self, answers: list[int], every: Mapping[int, int]):
        """(rows before each answer's last token, the rows with logits, the answers
        decoded). An answer scored in full starts its run with the row it already had."""
        todo = [i for i in answers if self._pending[i] or self._row[i] is None]
        for i in todo:
            row = self._row[i]
            if i in every and row is not None:  # the run starts with the row it has
                self._run[i] = [self._copy_of(row)]
                continue
            if i in every:
                self._run[i] = []
            needs_row = every[i] > len(self._pending[i]) if i in every else not self._pending[i]
            if row is None and needs_row:
                # its row went stale with a decode of others: read its last token again
                self.context.remove(self._first + i, len(self._done[i]) - 1)
                self._pending[i].insert(0, self._done[i].pop())
        self._run_alone = False  # True once a run was read one token per decode
        if self.exact_runs:
            for i in todo:
                if i in every:
                    self._score_one_by_one(i)
                    self._run_alone = True
            todo = [i for i in todo if i not in every]
        body, heads = [], []
        for i in todo:
            pending, start = self._pending[i], len(self._done[i])
            for k, token in enumerate(pending):
                last = k == len(pending) - 1
                row = Row(token, start + k, self._first + i, last or i in every)
                (heads if last or i in every else body).append(row)
        return body, heads, todo

    def _copy_of(self, row: int) -> np.ndarray:
        return self._first_row if row == -1 else self._output[row].copy()

    def _score_one_by_one(self, i: int) -> None:
        """Read answer i's pending tokens one decode each, keeping a copy of each row."""
        seq = self._first + i
        while self._pending[i]:
            token = self._pending[i][0]
            try:
                self.context.decode([Row(token, len(self._done[i]), seq, True)])
            except BaseException:
                self._forget_pending([i])
                raise
            self._done[i].append(self._pending[i].pop(0))
            self._run[i].append(self.context.logits(0).copy())
        self._row[i] = None  # its last row is a copy in the run, not in the output

    def _forget_pending(self, todo: list[int]) -> None:
        """A decode failed: the pending tokens' cells are gone (Context.decode), and so is
        every row."""
        for i in range(self.n):
            if self._row[i] != -1 or i in todo:
                self._row[i] = None
            self._run[i] = None

    def _read(self, todo: list[int], first_output: int, every: Mapping[int, int]) -> int:
        """The decode of `todo`'s pending tokens happened; their rows start at
        first_output. Returns the number of output rows they took."""
        runs = {i: self._run[i] for i in every}  # rows copied before this decode stay
        self._forget_pending(todo)  # rows of the last output go stale; the prompt's stays
        output = first_output
        for i in todo:
            count = len(self._pending[i]) if i in every else 1
            self._done[i].extend(self._pending[i])
            self._pending[i] = []
            if i in every:
                self._run[i] = runs[i] + list(range(output, output + count))
            output += count
            self._row[i] = output - 1
        for i, run in runs.items():  # runs scored one by one hold copies only
            if i not in todo and run is not None:
                self._run[i] = run
        self._output = self.context.output_rows()
        return output - first_output

    def rows(self, answers: list[int]) -> np.ndarray:
        """The next-token logits of each answer: shape (len(answers), n_vocab), float32.

        A view of llama.cpp's buffer when the rows are in output order (read it, never
        write it; valid until the next decode), else a copy.
        """
        index = []
        for i in answers:
            if not self.ready(i):
                raise RuntimeError(f"answer {i} has no logits: decode it first")
            index.append(self._row[i])
        if -1 in index:  # the prompt's row, before any decode
            output = self._output
            return np.stack([self._first_row if j == -1 else output[j] for j in index])
        if index == list(range(index[0], index[0] + len(index))):
            return self._output[index[0] : index[0] + len(index)]
        return self._output[index]

    def run_rows(self, i: int, m: int) -> np.ndarray:
        """The logits at answer i's last m positions: after each of its last m - 1 tokens
        and after the token before them, from its last scored run (or, with nothing
        pushed since its last decode, its last row, m = 1). Shape (m, n_vocab), float32,
        own memory."""
        run = self._run[i]
        if run is None:
            run = [] if not self.ready(i) else [self._row[i]]
        if len(run) < m:
            raise RuntimeError(f"answer {i} has {len(run)} scored rows, not {m}")
        return np.stack([self._row_at(row) for row in run[len(run) - m :]])

    def _row_at(self, row: int | np.ndarray) -> np.ndarray:
        """A run's row: a copy, the prompt's row (-1) or an index into the last output."""
        if isinstance(row, np.ndarray):
            return row
        return self._first_row if row == -1 else self._output[row]

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


def decode_together(jobs: list[tuple[Sequences, list[int], Mapping[int, int]]], stop=None) -> None:
    """Decode the pending tokens of one or more views' answers, all in one context: the
    rows before each answer's last token first (n_batch at a time), then every last
    token, with logits, in the final decode (llama.cpp keeps the last decode's logits
    only), with every row of the answers scored in full. Two views share a context when
    both roles of a pair run on one model."""
    plans = [(view, *view._plan(answers, every), every) for view, answers, every in jobs]
    body = [row for view, rows, _, _, _ in plans if not view.one_token_per_decode for row in rows]
    heads = [row for _, _, rows, _, _ in plans for row in rows]
    if not heads:  # nothing left to read (runs scored one by one are read already)
        for view, _, _, todo, every in plans:
            if view._run_alone:
                view._read(todo, 0, every)
        return
    context = jobs[0][0].context
    n_batch = context.n_batch
    chunks = [body[i : i + n_batch] for i in range(0, len(body), n_batch)]
    chunks += _rounds([rows for view, rows, _, _, _ in plans if view.one_token_per_decode])
    if chunks and len(chunks[-1]) + len(heads) <= n_batch and not _in_rounds(plans):
        chunks[-1] = chunks[-1] + heads
    else:
        chunks.append(heads)
    try:
        for chunk in chunks:
            if stop is not None and stop.is_set():
                raise Cancelled()
            context.decode(chunk)
    except BaseException:
        for view, _, _, todo, _ in plans:
            for i in todo:  # what was read stays read; drop the rest of the pending cells
                view.context.remove(view._first + i, len(view._done[i]))
            view._forget_pending(todo)
        raise
    first_output = 0
    for view, _, _, todo, every in plans:
        first_output += view._read(todo, first_output, every)


def _rounds(bodies: list[list[Row]]) -> list[list[Row]]:
    """The rows before each answer's last token, one per sequence per decode: round r
    holds each sequence's token that is that many decodes before its last (the rounds
    end where the final decode, with every last token, begins)."""
    by_seq: dict[int, list[Row]] = {}
    for rows in bodies:
        for row in rows:
            by_seq.setdefault(row.seq, []).append(row)
    depth = max((len(rows) for rows in by_seq.values()), default=0)
    rounds: list[list[Row]] = [[] for _ in range(depth)]
    for rows in by_seq.values():
        for k, row in enumerate(rows):
            rounds[depth - len(rows) + k].append(row)
    return rounds


def _in_rounds(plans) -> bool:
    """True when some view reads its tokens one per decode (its last tokens then go in a
    decode of their own, after the rounds)."""
    return any(view.one_token_per_decode for view, *_ in plans)

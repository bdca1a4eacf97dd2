"""Many token sequences in one context, decoded together.

A context holds up to n_seq_max sequences (one KV buffer for all: unified). Each live
sequence is one answer: it opens with a prompt, read in chunks between decodes of the
others (`open`, `read_prompts_together`), or shares another's prompt once read (`share`: the
cells are copied by reference, `llama_memory_seq_cp`). Sequence 0 is the stream's own:
its tokens stay in the cache when its answer ends, so the next prompt reuses what it
shares with them (a chat's follow-up reads only the new turn); a sequence opened while
0 is busy starts from the part of 0's prompt it shares. From there each answer has its
own tokens. `decode(seqs)` reads the pending tokens of the given answers in one batch
(a row per token) and computes logits only for each answer's last token; `rows(seqs)`
is then a (k, n_vocab) float32 array of those logits. `decode(seqs, every=...)` also
computes logits after every pending token of some answers (a drafted run, scored at
once); `run_rows(seq)` then holds one row per position of the run.

A finished answer is closed, which frees its cells (sequence 0 keeps its tokens).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

import numpy as np

from ..errors import Cancelled
from .context import Row
from .stream import Stream


class Sequences:
    """The sequences of one Stream's context: answer i's is the context's sequence
    stream.seq + i (i < stream.n_seq_max).

    tokens(i): everything in sequence i, evaluated or pending, prompt included.
    """

    def __init__(
        self,
        stream: Stream,
        exact_runs: bool = False,
        one_token_per_decode: bool = False,
    ):
        n = stream.n_seq_max  # the sequences this stream's role may use, its own first
        if stream.seq + n > stream.context.n_seq_max:
            raise ValueError(f"{n} sequences from {stream.seq} do not fit the context")
        self.stream = stream
        self.context = stream.context
        # Answer i is the context's sequence first + i: the views of a pair's two roles
        # may share one context (both roles on one model), each with sequences of its own.
        self.first = stream.seq
        self.n = n
        self._done: list[list[int]] = [[] for _ in range(n)]  # evaluated tokens
        self._pending: list[list[int]] = [[] for _ in range(n)]
        self._row: list[int | None] = [None] * n  # index into the last output, or -1
        self._prompt_row: list[np.ndarray | None] = [None] * n  # row -1: after the prompt
        self._output: np.ndarray | None = None
        self._live = [False] * n
        self._readers: dict[int, Stream] = {}  # sequences whose prompt is being read
        self._prompt_length = [0] * n
        self._shared = [0] * n  # leading cells shared with another live sequence
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

    # --- opening and closing ---------------------------------------------------------------

    def free(self) -> list[int]:
        """Sequence ids no answer holds, sequence 0 (the cache's) first."""
        return [i for i in range(self.n) if not self._live[i]]

    def live(self) -> list[int]:
        return [i for i in range(self.n) if self._live[i]]

    def open(self, i: int, prompt: list[int], *, fixed: int = 0, store=None) -> None:
        """Sequence i begins `prompt`: it reuses what the cache shares with it, and reads
        the rest with `read_prompts_together`."""
        if self._live[i]:
            raise RuntimeError(f"sequence {i} is in use")
        seq = self.first + i
        home = self.stream
        reader = home if i == 0 else Stream.on(self.context, seq, home.n_ctx, None, home.n_batch)
        if i != 0:
            self.context.remove(seq)
            keep = _common_prefix(self._stable_home(), prompt, len(prompt) - 1)
            if keep:  # the part of sequence 0 this prompt shares, by reference
                self.context.copy(self.first, seq, keep)
                reader.tokens = list(prompt[:keep])
        reader.start(prompt, fixed=fixed, store=store)
        self._readers[i] = reader
        self._live[i] = True
        self._prompt_length[i] = len(prompt)
        self._shared[i] = 0 if i == 0 else len(reader.tokens)
        self._done[i], self._pending[i] = list(reader.tokens), []
        self._row[i] = self._run[i] = None

    def reading(self, i: int) -> bool:
        """True while sequence i's prompt is being read."""
        return i in self._readers

    def _took_chunk(self, i: int, reader: Stream, chunk: list[int], in_fixed: bool) -> None:
        """Sequence i's chunk was decoded (in a decode of several prompts' chunks)."""
        reader._advance(len(chunk))
        if in_fixed and len(reader.tokens) == reader._fixed_end and reader._store:
            reader._store.save(reader)
        self._done[i] = list(reader.tokens)

    def _prompt_read(self, i: int, reader: Stream, output: int) -> None:
        """Sequence i's prompt is read; its row is the last decode's output `output`."""
        reader._take_logits(output)
        del self._readers[i]
        self._prompt_row[i] = np.array(reader.logits(), dtype=np.float32, copy=True)
        self._row[i] = -1
        reader.pending = []

    def share(self, source: int, i: int) -> None:
        """Sequence i begins with `source`'s prompt, read already: its cells by reference."""
        length = self._prompt_length[source]
        self.context.remove(self.first + i)
        self.context.copy(self.first + source, self.first + i, length)
        self._live[i] = True
        self._done[i], self._pending[i] = list(self._done[source][:length]), []
        self._prompt_length[i] = length
        self._shared[i] = length
        self._prompt_row[i] = self._prompt_row[source]
        self._row[i], self._run[i] = -1, None

    def live_sequence(self, i: int) -> bool:
        return self._live[i]

    def prompt_length(self, i: int) -> int:
        return self._prompt_length[i]

    def close(self, i: int) -> None:
        """Answer i is over: its cells are freed; sequence 0's stay as the cache, which the
        stream holds as its tokens."""
        self._readers.pop(i, None)
        self._live[i] = False
        self._row[i] = self._run[i] = self._prompt_row[i] = None
        if i != 0:
            self.context.remove(self.first + i)
            self._done[i], self._pending[i] = [], []
            return
        stream = self.stream
        if self._pending[0]:  # what was never read is not in the cache
            self._pending[0] = []
        stream.tokens = list(self._done[0])
        stream.pending = []
        stream._logits = None
        stream._prompt_end = 0
        stream._fixed_end = 0

    def close_all(self) -> None:
        for i in self.live():
            self.close(i)
        self._output = None

    def _stable_home(self) -> list[int]:
        """What sequence 0 holds that will not change: everything when it is free, its
        prompt while an answer grows on it, what it has read of its prompt so far while
        it reads it (reading only appends)."""
        if not self._live[0]:
            return self.stream.tokens
        if 0 in self._readers:
            return self._done[0]
        return self._done[0][: self._prompt_length[0]]

    def home_holds(self, prompt: list[int], fixed: int) -> bool:
        """True unless sequence 0 is still reading the first `fixed` tokens of `prompt`
        (a preamble a sequence opened now would read again instead of sharing)."""
        if fixed == 0 or 0 not in self._readers:
            return True
        if _common_prefix(self._full_home(), prompt, fixed) < fixed:
            return True  # sequence 0's prompt does not share that preamble: no use waiting
        return _common_prefix(self._done[0], prompt, fixed) >= fixed

    def _full_home(self) -> list[int]:
        return self._done[0] + self._readers[0].pending

    def _keep_runs(self) -> None:
        """Before a decode overwrites the output: scored runs not yet read (an answer
        admitted or a prompt read between a run's decode and its use) keep copies of
        their rows. Runs are normally read before the next decode, so this copies
        nothing."""
        for j in range(self.n):
            run = self._run[j]
            if run is not None and not all(isinstance(r, np.ndarray) for r in run):
                self._run[j] = [
                    r if isinstance(r, np.ndarray) else self._copy_of(r, j) for r in run
                ]

    def _went_stale(self, except_for: int | set[int]) -> None:
        """A decode of some sequences' prompts happened: the other rows in the output are
        gone."""
        keep = except_for if isinstance(except_for, set) else {except_for}
        for j in range(self.n):
            if j not in keep and self._row[j] not in (None, -1):
                self._row[j] = None
            if j not in keep and self._run[j] is not None:
                self._run[j] = [r for r in self._run[j] if isinstance(r, np.ndarray)] or None

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
        """KV cells the live answers hold (what they share counted once), and the cache's
        when sequence 0 is free."""
        used = sum(self.length(i) - self._shared[i] for i in range(self.n) if self._live[i])
        return used + (0 if self._live[0] else len(self.stream.tokens))

    def push(self, i: int, tokens: list[int]) -> None:
        """Append tokens to answer i; they are read at its next decode."""
        if tokens:  # the row after its last evaluated token stays (a run scored later
            self._pending[i].extend(tokens)  # may begin with it), but it is not ready
            self._run[i] = None

    def truncate(self, i: int, length: int) -> None:
        """Keep the first `length` tokens of answer i (evaluated or pending)."""
        done = self._done[i]
        if length < len(done):
            self.context.remove(self.first + i, length)
            del done[length:]
            self._pending[i] = []
            self._row[i] = None
        else:
            del self._pending[i][length - len(done) :]
        self._run[i] = None

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
                self._run[i] = [self._copy_of(row, i)]
                continue
            if i in every:
                self._run[i] = []
            needs_row = every[i] > len(self._pending[i]) if i in every else not self._pending[i]
            if row is None and needs_row:
                # its row went stale with a decode of others: read its last token again
                self.context.remove(self.first + i, len(self._done[i]) - 1)
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
                row = Row(token, start + k, self.first + i, last or i in every)
                (heads if last or i in every else body).append(row)
        return body, heads, todo

    def _copy_of(self, row: int, i: int) -> np.ndarray:
        return self._prompt_row[i] if row == -1 else self._output[row].copy()

    def _score_one_by_one(self, i: int) -> None:
        """Read answer i's pending tokens one decode each, keeping a copy of each row."""
        seq = self.first + i
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
            run = self._run[i]
            if i in todo or run is None or not all(isinstance(r, np.ndarray) for r in run):
                self._run[i] = None  # runs of copies (`_keep_runs`) outlive the decode

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
        if -1 in index:  # a prompt's row, before any decode
            return np.stack([self._row_at(j, i) for j, i in zip(index, answers, strict=True)])
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
        rows = np.stack([self._row_at(row, i) for row in run[len(run) - m :]])
        self._run[i] = None  # read: no later decode needs to keep it
        return rows

    def _row_at(self, row: int | np.ndarray, i: int) -> np.ndarray:
        """A run's row: a copy, the prompt's row (-1) or an index into the last output."""
        if isinstance(row, np.ndarray):
            return row
        return self._prompt_row[i] if row == -1 else self._output[row]


def decode_together(jobs: list[tuple[Sequences, list[int], Mapping[int, int]]], stop=None) -> None:
    """Decode the pending tokens of one or more views' answers, all in one context: the
    rows before each answer's last token first (n_batch at a time), then every last
    token, with logits, in the final decode (llama.cpp keeps the last decode's logits
    only), with every row of the answers scored in full. Two views share a context when
    both roles of a pair run on one model: pass both (one with no answers, when only the
    other reads), since a decode overwrites every row of the context."""
    for view, _, _ in jobs:
        view._keep_runs()
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
                view.context.remove(view.first + i, len(view._done[i]))
            view._forget_pending(todo)
        raise
    first_output = 0
    for view, _, _, todo, every in plans:
        first_output += view._read(todo, first_output, every)


def read_prompts_together(jobs: list[tuple[Sequences, list[int]]]) -> list[tuple[Sequences, int]]:
    """The next chunk of each listed sequence's prompt, of views on one context (every
    view on it: a decode makes the rows of all of them stale), in as
    few decodes as possible: the chunks before prompts' last tokens in one decode (up
    to n_batch tokens; sequences that do not fit read at the next call), then the last
    tokens, with logits, in one more. Returns the (view, sequence) pairs whose prompt is
    now read. A prompt read alone is read exactly as `Stream.read_chunk` reads it; read
    together, its cache and first row may differ from that in llama.cpp's rounding, as
    any row decoded in company does."""
    views = [view for view, _ in jobs]  # every view on the context: a decode stales them all
    jobs = [(view, [i for i in seqs if view.reading(i)]) for view, seqs in jobs]
    jobs = [(view, seqs) for view, seqs in jobs if seqs]
    if not jobs:
        return []
    # Preambles first, the other prompts after them: in a context that both roles of a
    # pair share, llama.cpp's rounding depends on where each cell lies, and a preamble
    # loaded from disk (`Stream.start`) takes the first cells. Read before the rest, it
    # takes them too, so an answer is the same whether its preamble was read or loaded.
    preambles = [(view, [i for i in seqs if view._readers[i].in_preamble]) for view, seqs in jobs]
    reading_preambles = any(seqs for _, seqs in preambles)
    if reading_preambles:
        jobs = [(view, seqs) for view, seqs in preambles if seqs]
    context = jobs[0][0].context
    for view in views:
        view._keep_runs()
    bodies, lasts = [], []
    budget = context.n_batch
    for view, seqs in jobs:
        for i in seqs:
            reader = view._readers[i]
            reader._check_room()
            chunk = reader._next_chunk()
            if len(chunk) == len(reader.pending):  # its last token: read with logits
                lasts.append((view, i, reader, chunk))
            elif budget > 0:
                chunk = chunk[:budget]
                budget -= len(chunk)
                bodies.append((view, i, reader, chunk))
    finished = []
    decoded = False
    try:
        for group, with_logits in ((bodies, False), (lasts, True)):
            if not with_logits and not reading_preambles:
                # A prompt whose body this decode finishes reads its last token in the
                # decode of last tokens below, a step sooner than at the next call (it
                # is still alone in its own decode, as every prompt's last token is).
                lasts += _bodies_ending(group)
            if not group:
                continue
            rows = [row for _, _, r, chunk in group for row in r._rows(chunk, with_logits)]
            in_fixed = [len(reader.tokens) < reader._fixed_end for _, _, reader, _ in group]
            decoded = True
            context.decode(rows)
            for (view, i, reader, chunk), fixed in zip(group, in_fixed):
                view._took_chunk(i, reader, chunk, fixed)
            for index, (view, i, reader, _) in enumerate(group if with_logits else ()):
                view._prompt_read(i, reader, index)
                finished.append((view, i))
    finally:
        for view in views if decoded else ():
            view._went_stale(except_for={i for v, i in finished if v is view})
    return finished


def _bodies_ending(bodies: list) -> list:
    """The (view, sequence, reader, last token) of each body chunk that reads all its
    prompt but the last token."""
    return [
        (view, i, reader, reader.pending[len(chunk) :])
        for view, i, reader, chunk in bodies
        if len(reader.pending) == len(chunk) + 1
    ]


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


def _common_prefix(held: list[int], prompt: list[int], limit: int) -> int:
    """How many leading tokens `held` and `prompt` share (at most `limit`)."""
    n = 0
    top = min(len(held), limit)
    while n < top and held[n] == prompt[n]:
        n += 1
    return n

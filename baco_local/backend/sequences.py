"""Several token sequences in one stream's context, decoded together.

n answers to one prompt share a Stream: the prompt is read once on sequence 0 (reusing
whatever the cache already holds, as a single answer would) and copied by reference to
sequences 1..n-1 (`llama_memory_seq_cp`; the KV buffer is unified, so nothing is
duplicated). From there each sequence has its own tokens. `decode(seqs)` reads the
pending tokens of the given sequences in one batch (a row per token) and computes
logits only for each sequence's last token; `rows(seqs)` is then a (k, n_vocab) float32
array of those logits.

A finished sequence is dropped, which frees its cells. `close()` drops every sequence
but 0 and hands sequence 0 back to the stream as its single sequence, so the next
generation reuses its prompt.
"""

from __future__ import annotations

import threading

import numpy as np

from ..errors import Cancelled, PromptError
from .stream import Stream


class Sequences:
    """n sequences over one Stream, all starting from one prompt.

    tokens(seq): everything in the sequence, evaluated or pending, prompt included.
    """

    def __init__(self, stream: Stream, n: int):
        if not 1 <= n <= stream.n_seq_max:
            raise ValueError(f"{n} sequences, but the context holds {stream.n_seq_max}")
        self.stream = stream
        self.n = n
        self._llama = stream._llama
        self._memory = stream._memory
        self._done: list[list[int]] = [[] for _ in range(n)]  # evaluated tokens
        self._pending: list[list[int]] = [[] for _ in range(n)]
        self._row: list[int | None] = [None] * n  # index into the last output, or -1: first row
        self._first_row: np.ndarray | None = None  # the prompt's logits, shared by all
        self._output: np.ndarray | None = None
        self._live = [False] * n
        self.prompt_length = 0
        self.decodes = 0  # llama_decode calls made, for the bench

    # --- starting ----------------------------------------------------------------------

    def start(
        self, prompt: list[int], *, fixed: int = 0, store=None, stop: threading.Event | None = None
    ) -> None:
        """Read `prompt` once (on sequence 0, reusing the cache) and give it to all n."""
        stream = self.stream
        stream.start(prompt, fixed=fixed, store=store)
        stream.catch_up(stop)
        self._first_row = np.array(stream.logits(), dtype=np.float32, copy=True)
        for seq in range(1, self.stream.n_seq_max):
            self._llama.llama_memory_seq_rm(self._memory, seq, -1, -1)
        for seq in range(1, self.n):
            self._llama.llama_memory_seq_cp(self._memory, 0, seq, -1, -1)
        self.prompt_length = len(prompt)
        for seq in range(self.n):
            self._done[seq] = list(prompt)
            self._pending[seq] = []
            self._row[seq] = -1
            self._live[seq] = True
        stream.tokens = list(prompt)  # sequence 0 is managed here until close()
        stream.pending = []

    # --- tokens ------------------------------------------------------------------------

    def tokens(self, seq: int) -> list[int]:
        return self._done[seq] + self._pending[seq]

    def pending_count(self, seq: int) -> int:
        """Tokens pushed to the sequence and not yet read."""
        return len(self._pending[seq])

    def length(self, seq: int) -> int:
        return len(self._done[seq]) + len(self._pending[seq])

    def cells_used(self) -> int:
        """KV cells the live sequences hold (the shared prompt counted once)."""
        return self.prompt_length + sum(
            self.length(seq) - self.prompt_length for seq in range(self.n) if self._live[seq]
        )

    def push(self, seq: int, tokens: list[int]) -> None:
        """Append tokens to a sequence; they are read at its next decode."""
        if tokens:
            self._pending[seq].extend(tokens)
            self._row[seq] = None

    def truncate(self, seq: int, length: int) -> None:
        """Keep the first `length` tokens of the sequence (evaluated or pending)."""
        done = self._done[seq]
        if length < len(done):
            self._llama.llama_memory_seq_rm(self._memory, seq, length, -1)
            del done[length:]
            self._pending[seq] = []
        else:
            del self._pending[seq][length - len(done) :]
        self._row[seq] = None

    def drop(self, seq: int) -> None:
        """The sequence is finished: free its cells (sequence 0 keeps its tokens)."""
        self._live[seq] = False
        self._row[seq] = None
        if seq != 0:
            self._llama.llama_memory_seq_rm(self._memory, seq, -1, -1)

    # --- reading -----------------------------------------------------------------------

    def ready(self, seq: int) -> bool:
        """True when the sequence's next-token logits can be read without a decode."""
        return self._row[seq] is not None

    def decode(self, seqs: list[int], stop: threading.Event | None = None) -> None:
        """Read the pending tokens of `seqs` in as few decodes as the batch size allows;
        afterwards each of them is ready. Every other sequence's row becomes stale (a
        sequence asked for again with nothing pending reads its last token again)."""
        todo = [seq for seq in seqs if self._pending[seq] or self._row[seq] is None]
        if not todo:
            return
        for seq in todo:
            if not self._pending[seq]:  # its row went stale with a decode of others: read
                last = len(self._done[seq]) - 1  # its last token again
                self._llama.llama_memory_seq_rm(self._memory, seq, last, -1)
                self._pending[seq] = [self._done[seq].pop()]
        # Logits are kept from the last decode only, so every sequence's last token goes
        # into the last decode; the tokens before them fill the decodes before it.
        body = [(seq, i) for seq in todo for i in range(len(self._pending[seq]) - 1)]
        heads = [(seq, len(self._pending[seq]) - 1) for seq in todo]
        n_batch = self.stream.n_batch
        chunks = [body[i : i + n_batch] for i in range(0, len(body), n_batch)]
        if chunks and len(chunks[-1]) + len(heads) <= n_batch:
            chunks[-1] = chunks[-1] + heads
        else:
            chunks.append(heads)
        for seq in range(self.n):  # rows of the last output go stale; the prompt's stays
            if self._row[seq] != -1 or seq in todo:
                self._row[seq] = None
        for index, chunk in enumerate(chunks):
            if stop is not None and stop.is_set():
                raise Cancelled()
            self._decode(chunk, outputs=index == len(chunks) - 1)
        for seq in todo:
            self._done[seq].extend(self._pending[seq])
            self._pending[seq] = []
        for row, seq in enumerate(todo):
            self._row[seq] = row
        out = self._llama.llama_get_logits(self.stream.ctx)
        n_vocab = self.stream.model.n_vocab
        self._output = np.ctypeslib.as_array(out, shape=(len(todo), n_vocab))

    def _decode(self, chunk: list[tuple[int, int]], outputs: bool) -> None:
        batch = self.stream._batch
        batch.n_tokens = len(chunk)
        for i, (seq, k) in enumerate(chunk):
            batch.token[i] = self._pending[seq][k]
            batch.pos[i] = len(self._done[seq]) + k
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq
            batch.logits[i] = outputs and k == len(self._pending[seq]) - 1
        status = self._llama.llama_decode(self.stream.ctx, batch)
        self.decodes += 1
        if status != 0:
            # Part of the batch may be in the cache: drop every pending position.
            for seq, _ in chunk:
                self._llama.llama_memory_seq_rm(self._memory, seq, len(self._done[seq]), -1)
            if status == 1:
                raise PromptError(
                    f"The context of {self.stream.n_ctx} tokens is full.",
                    "raise --ctx, or ask for fewer answers or fewer tokens",
                )
            raise RuntimeError(f"llama_decode failed with status {status}")

    def rows(self, seqs: list[int]) -> np.ndarray:
        """The next-token logits of each sequence: shape (len(seqs), n_vocab), float32.

        A view of llama.cpp's buffer when the rows are in output order (read it, never
        write it; valid until the next decode), else a copy.
        """
        index = []
        for seq in seqs:
            row = self._row[seq]
            if row is None:
                raise RuntimeError(f"sequence {seq} has no logits: decode it first")
            index.append(row)
        if -1 in index:  # the prompt's row, before any decode
            output = self._output
            return np.stack(
                [self._first_row if i == -1 else output[i] for i in index]  # type: ignore[index]
            )
        if index == list(range(index[0], index[0] + len(index))):
            return self._output[index[0] : index[0] + len(index)]
        return self._output[index]

    def close(self) -> None:
        """Drop every sequence but 0, which becomes the stream's single sequence again."""
        for seq in range(1, self.n):
            self._llama.llama_memory_seq_rm(self._memory, seq, -1, -1)
        stream = self.stream
        stream.tokens = list(self._done[0])
        stream.pending = []
        stream._logits = None
        stream._prompt_end = 0
        stream._fixed_end = 0
        self._output = None

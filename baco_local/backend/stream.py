"""One token sequence over a Model, in a context of its own."""

from __future__ import annotations

import ctypes
import threading
from contextlib import ExitStack

import numpy as np

from ..errors import Cancelled, PromptError
from .context import Context, Row
from .model import Model


class Stream:
    """The token sequence that one role (base or aligned) reads: sequence 0 of a Context
    of its own (batched answers use the context's other sequences, see `Sequences`).

    tokens: tokens already in the KV cache. pending: pushed, not yet evaluated.
    """

    def __init__(
        self,
        model: Model,
        *,
        n_ctx: int,
        n_batch: int,
        n_threads: int,
        n_outputs: int = 1,
        n_seq_max: int = 1,
        shared: bool = False,
    ):
        self.model = model
        self._llama = model._llama
        self._exit = ExitStack()
        context = Context(
            model,
            n_ctx=n_ctx,
            n_batch=n_batch,
            n_threads=n_threads,
            n_outputs=n_outputs,
            n_seq_max=n_seq_max,
            shared=shared,
        )
        self._exit.callback(context.close)
        self._attach(context, 0)

    @classmethod
    def on(
        cls,
        context: Context,
        seq: int,
        n_ctx: int | None = None,
        n_seq: int | None = None,
        n_batch: int | None = None,
    ) -> Stream:
        """Another sequence of an existing context (the context stays its owner's).
        n_ctx, n_seq, n_batch: as `limit`; by default the whole context's."""
        stream = cls.__new__(cls)
        stream.model = context.model
        stream._llama = context.model._llama
        stream._exit = ExitStack()
        stream._attach(context, seq)
        stream.limit(n_ctx, n_seq, n_batch)
        return stream

    def limit(
        self,
        n_ctx: int | None = None,
        n_seq: int | None = None,
        n_batch: int | None = None,
        n_outputs: int | None = None,
    ) -> None:
        """Keep this stream's answers to n_ctx cells and n_seq sequences (from its own on:
        `Sequences`) of its context, which it may share with another role's stream, its
        prompt chunks to n_batch tokens and its rows with logits in one decode to
        n_outputs (the context's decodes may hold more of both)."""
        if n_ctx is not None:
            self.n_ctx = min(n_ctx, self.context.n_ctx)
        if n_seq is not None:
            self.n_seq_max = min(n_seq, self.context.n_seq_max - self.seq)
        if n_batch is not None:
            self.n_batch = min(n_batch, self.context.n_batch)
        if n_outputs is not None:
            self.n_outputs = min(n_outputs, self.context.n_outputs)

    def _attach(self, context: Context, seq: int) -> None:
        self.context = context
        self.seq = seq  # this stream's sequence id in its context
        self.ctx = context.ctx
        self._memory = context.memory
        self.n_ctx = context.n_ctx
        self.n_batch = context.n_batch
        self.n_outputs = context.n_outputs
        self.n_seq_max = context.n_seq_max
        self.tokens: list[int] = []
        self.pending: list[int] = []
        self._prompt_end = 0  # tokens before this position are batched when read
        self._fixed_end = 0  # the shared prefix (a preamble) ends here: its own segment
        self._store = None
        self._logits: np.ndarray | None = None

    @property
    def in_preamble(self) -> bool:
        """True while the shared prefix (`start`'s fixed) is still being read."""
        return len(self.tokens) < self._fixed_end

    @property
    def n_past(self) -> int:
        """Tokens in the sequence, evaluated or pending."""
        return len(self.tokens) + len(self.pending)

    def start(self, prompt: list[int], *, fixed: int = 0, store=None) -> None:
        """Make `prompt` the sequence, reusing the longest evaluated prefix in the cache.

        At least the last prompt token is left pending, so catching up yields logits.
        fixed: length of a prefix that many prompts share (an alignment preamble). It is
        read as a segment of its own, so results never depend on where it came from,
        and `store` (a PrefixStore: load(stream, tokens) -> bool, save(stream)) may
        bring it from disk or keep it there for the next process.
        """
        if len(prompt) >= self.n_ctx:
            raise PromptError(
                f"The prompt is {len(prompt)} tokens but the context holds {self.n_ctx}.",
                f"shorten the prompt or raise --ctx (n_ctx in Python) above {len(prompt) + 64}",
            )
        keep = 0
        limit = min(len(self.tokens), len(prompt) - 1)
        while keep < limit and self.tokens[keep] == prompt[keep]:
            keep += 1
        self.rollback(keep)
        self._fixed_end = fixed if 0 < fixed < len(prompt) else 0
        self._store = store if self._fixed_end else None
        if self._store and keep < self._fixed_end:
            # load() empties the sequence first, so a failed load keeps nothing
            keep = self._fixed_end if self._store.load(self, prompt[:fixed]) else 0
        self.pending = list(prompt[keep:])
        self._prompt_end = len(prompt)

    def save_state(self, path: str) -> bool:
        """Write this sequence's cache (and its tokens) to a llama.cpp state file."""
        tokens = (self._llama.llama_token * len(self.tokens))(*self.tokens)
        written = self._llama.llama_state_seq_save_file(
            self.ctx, path.encode(), self.seq, tokens, len(self.tokens)
        )
        return written > 0

    def load_state(self, path: str, expected: list[int]) -> bool:
        """Replace the sequence with a state file's, if it holds exactly `expected`."""
        self.rollback(0)
        capacity = len(expected) + 1
        tokens = (self._llama.llama_token * capacity)()
        count = ctypes.c_size_t(0)
        read = self._llama.llama_state_seq_load_file(
            self.ctx, path.encode(), self.seq, tokens, capacity, ctypes.byref(count)
        )
        if read == 0 or list(tokens[: count.value]) != list(expected):
            self.context.remove(self.seq)
            return False
        self.tokens = list(expected)
        return True

    def rollback(self, n: int) -> None:
        """Forget everything after the first n evaluated tokens (and all pending ones)."""
        self.pending = []
        self._logits = None
        n = min(n, len(self.tokens))
        # Always clear the tail: an interrupted catch-up may have left positions behind.
        if not self._llama.llama_memory_seq_rm(self._memory, self.seq, n, -1):
            # Some caches (recurrent models) cannot drop a tail: start over.
            self.context.remove(self.seq)
            self.pending = self.tokens[:n]
            n = 0
        del self.tokens[n:]

    def push(self, token_id: int) -> None:
        """Append a token; it is evaluated at the next catch_up."""
        self.pending.append(token_id)
        self._logits = None

    def set_threads(self, n_threads: int) -> None:
        self.context.set_threads(n_threads)

    def catch_up(self, stop: threading.Event | None = None) -> None:
        """Evaluate pending tokens; afterwards `logits()` is the next-token row.

        Prompt tokens go in batches of n_batch, except the last. The last prompt token
        and generated tokens go one per decode, as an eager loop would feed them, so a
        stream that caught up late, or reused its cached prompt, holds exactly the same
        cache and logits as one that never waited (llama.cpp's numbers depend on how
        tokens are batched: up to 0.5 logits apart on Gemma 3 270M). Only the last decode
        computes logits, so a deferred token costs the transformer body, not the output
        layer (about 28% of a step for Gemma 3 270M, whose 262,144-token output layer
        dominates). `stop`, when set, raises Cancelled between two decodes (a long
        prompt is read n_batch tokens at a time), leaving the stream consistent.
        """
        if not self.pending:
            if self._logits is None:
                raise RuntimeError("catch_up with nothing pending and no logits: start() first")
            return
        while not self.read_chunk(stop):
            pass

    def read_chunk(self, stop: threading.Event | None = None) -> bool:
        """Read the next pending chunk (`catch_up` one decode at a time); True once nothing
        is pending and `logits()` is the next-token row."""
        if stop is not None and stop.is_set():
            raise Cancelled()
        self._check_room()
        self._read(self._next_chunk())
        if self.pending:
            return False
        self._take_logits(self.context.outputs - 1)
        return True

    def _check_room(self) -> None:
        if self.n_past > self.n_ctx:
            raise PromptError(
                f"The context of {self.n_ctx} tokens is full.",
                "raise --ctx (n_ctx in Python) or ask for fewer tokens",
            )

    def _next_chunk(self) -> list[int]:
        """The pending tokens to read in the next decode.

        Segments: the fixed prefix, the rest of the prompt but its last token, then one
        token per decode. The prompt's last token is read alone like every generated
        token, so cold and cached prompts compute its logits alike.
        """
        in_fixed = len(self.tokens) < self._fixed_end
        end = self._fixed_end if in_fixed else self._prompt_end - 1
        batched = end - len(self.tokens)
        return self.pending[: min(self.n_batch, batched) if batched > 0 else 1]

    def _rows(self, chunk: list[int], last: bool, every: bool = False) -> list[Row]:
        start = len(self.tokens)
        return [
            Row(token, start + i, self.seq, every or (last and i == len(chunk) - 1))
            for i, token in enumerate(chunk)
        ]

    def _read(self, chunk: list[int]) -> None:
        """Decode `chunk` (the next pending tokens) alone, logits only at the very end."""
        in_fixed = len(self.tokens) < self._fixed_end
        self.context.decode(self._rows(chunk, last=len(chunk) == len(self.pending)))
        self._advance(len(chunk))
        if in_fixed and len(self.tokens) == self._fixed_end and self._store:
            self._store.save(self)

    def _advance(self, count: int) -> None:
        self.tokens.extend(self.pending[:count])
        del self.pending[:count]
        self._logits = None

    def _take_logits(self, index: int) -> None:
        row = self.context.logits(index)
        # In a context both roles read, the other role's next decode would overwrite it.
        self._logits = row.copy() if self.context.shared else row

    def score(self, prompt: list[int], continuation: list[int]) -> np.ndarray:
        """Log-probabilities of each continuation token given everything before it.

        Returns shape (len(continuation),), float64. Needs a stream made with n_outputs > 1
        to be fast: rows are read n_outputs at a time.
        """
        if not continuation:
            return np.zeros(0)
        if len(prompt) + len(continuation) > self.n_ctx:
            raise PromptError(
                f"Scoring needs {len(prompt) + len(continuation)} tokens; the context holds "
                f"{self.n_ctx}.",
                "raise the context size",
            )
        self.start(prompt)
        self.catch_up()
        out = [_log_softmax_at(self.logits(), continuation[0])]
        rest = continuation[:-1]
        step = min(self.n_outputs, self.n_batch)
        for begin in range(0, len(rest), step):
            chunk = rest[begin : begin + step]
            self.context.decode(self._rows(chunk, last=True, every=True))
            self.tokens.extend(chunk)
            for i in range(len(chunk)):
                logits = self.context.logits(i)
                out.append(_log_softmax_at(logits, continuation[begin + i + 1]))
        self._logits = None
        return np.array(out, dtype=np.float64)

    def logits(self) -> np.ndarray:
        """The next-token logits: shape (n_vocab,), float32, a borrowed view.

        Valid until this stream's next catch_up (and, in a context it shares with another
        stream, a copy of its own); read it, never write to it.
        """
        if self._logits is None:
            raise RuntimeError("no logits: call catch_up() first")
        return self._logits

    def close(self) -> None:
        self._exit.close()


def _log_softmax_at(logits: np.ndarray, token_id: int) -> float:
    top = float(logits.max())
    log_total = top + float(np.log(np.exp(logits - top, dtype=np.float64).sum()))
    return float(logits[token_id]) - log_total

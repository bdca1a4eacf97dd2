"""One context (one KV cache) reading one token sequence over a Model."""

from __future__ import annotations

import ctypes
import threading
from contextlib import ExitStack

import numpy as np

from ..errors import Cancelled, ModelFileError, PromptError
from .model import Model
from .runtime import Interruptible


class Stream:
    """One context over a Model: the token sequence that one role (base or aligned) reads.

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
    ):
        llama = model._llama
        self.model = model
        self._llama = llama
        self._exit = ExitStack()
        params = llama.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = params.n_ubatch = min(n_batch, n_ctx)
        # Several answers may share this context (`Sequences`): one KV buffer for all of
        # them (unified), so a shared prompt is stored once and copied by reference. With
        # one sequence in use, results and speed are those of n_seq_max = 1 (measured).
        params.n_seq_max = max(1, n_seq_max)
        params.kv_unified = True
        # One logits row per decode (the decode loop), one per sequence (batched answers)
        # or a few rows (scoring): never an n_batch x n_vocab buffer.
        params.n_outputs_max = max(1, min(max(n_outputs, n_seq_max), params.n_batch))
        self.n_outputs = params.n_outputs_max
        self.n_seq_max = params.n_seq_max
        params.n_threads = params.n_threads_batch = n_threads
        params.no_perf = True
        params.swa_full = True  # keep every position so rolling back always works
        # On the CPU, flash attention makes results depend on the thread count, and the
        # scheduler changes it between steps; on a GPU it saves memory, so let llama.cpp pick.
        params.flash_attn_type = (
            llama.LLAMA_FLASH_ATTN_TYPE_AUTO
            if model.n_gpu_layers
            else llama.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        model._runtime.recent_errors.clear()
        with Interruptible() as interrupt:
            ctx = llama.llama_init_from_model(model.handle, params)
            if interrupt.requested and ctx:
                llama.llama_free(ctx)
        if not ctx:
            detail = "; ".join(model._runtime.recent_errors) or "out of memory?"
            raise ModelFileError(
                f"llama.cpp could not create a context of {n_ctx} tokens for {model.path} "
                f"({detail}).",
                "try a smaller context with --ctx",
            )
        self.ctx = ctx
        self._exit.callback(llama.llama_free, ctx)
        self.n_ctx = int(llama.llama_n_ctx(ctx))
        self.n_batch = params.n_batch
        self._memory = llama.llama_get_memory(ctx)
        self._batch = llama.llama_batch_init(self.n_batch, 0, 1)
        self._exit.callback(llama.llama_batch_free, self._batch)
        self._threads = n_threads
        self.tokens: list[int] = []
        self.pending: list[int] = []
        self._prompt_end = 0  # tokens before this position are batched when read
        self._fixed_end = 0  # the shared prefix (a preamble) ends here: its own segment
        self._store = None
        self._logits: np.ndarray | None = None

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
                f"shorten the prompt or raise --ctx above {len(prompt) + 64}",
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
            self.ctx, path.encode(), 0, tokens, len(self.tokens)
        )
        return written > 0

    def load_state(self, path: str, expected: list[int]) -> bool:
        """Replace the sequence with a state file's, if it holds exactly `expected`."""
        self.rollback(0)
        capacity = len(expected) + 1
        tokens = (self._llama.llama_token * capacity)()
        count = ctypes.c_size_t(0)
        read = self._llama.llama_state_seq_load_file(
            self.ctx, path.encode(), 0, tokens, capacity, ctypes.byref(count)
        )
        if read == 0 or list(tokens[: count.value]) != list(expected):
            self._llama.llama_memory_seq_rm(self._memory, 0, -1, -1)
            return False
        self.tokens = list(expected)
        return True

    def rollback(self, n: int) -> None:
        """Forget everything after the first n evaluated tokens (and all pending ones)."""
        self.pending = []
        self._logits = None
        n = min(n, len(self.tokens))
        # Always clear the tail: an interrupted catch-up may have left positions behind.
        if not self._llama.llama_memory_seq_rm(self._memory, 0, n, -1):
            # Some caches (recurrent models) cannot drop a tail: start over.
            self._llama.llama_memory_seq_rm(self._memory, 0, -1, -1)
            self.pending = self.tokens[:n]
            n = 0
        del self.tokens[n:]

    def push(self, token_id: int) -> None:
        """Append a token; it is evaluated at the next catch_up."""
        self.pending.append(token_id)
        self._logits = None

    def set_threads(self, n_threads: int) -> None:
        if n_threads != self._threads:
            self._llama.llama_set_n_threads(self.ctx, n_threads, n_threads)
            self._threads = n_threads

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
        if self.n_past > self.n_ctx:
            raise PromptError(
                f"The context of {self.n_ctx} tokens is full.",
                "raise --ctx or ask for fewer tokens",
            )
        while self.pending:
            if stop is not None and stop.is_set():
                raise Cancelled()
            # Segments: the fixed prefix, the rest of the prompt but its last token, then
            # one token per decode. The prompt's last token is read alone like every
            # generated token, so cold and cached prompts compute its logits alike.
            in_fixed = len(self.tokens) < self._fixed_end
            end = self._fixed_end if in_fixed else self._prompt_end - 1
            batched = end - len(self.tokens)
            chunk = self.pending[: min(self.n_batch, batched) if batched > 0 else 1]
            self._decode(chunk, last=len(chunk) == len(self.pending))
            self.tokens.extend(chunk)
            del self.pending[: len(chunk)]
            if in_fixed and len(self.tokens) == self._fixed_end and self._store:
                self._store.save(self)
        row = self._llama.llama_get_logits_ith(self.ctx, -1)
        self._logits = np.ctypeslib.as_array(row, shape=(self.model.n_vocab,))

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
            self._decode(chunk, last=True, every=True)
            self.tokens.extend(chunk)
            for i in range(len(chunk)):
                row = self._llama.llama_get_logits_ith(self.ctx, i)
                logits = np.ctypeslib.as_array(row, shape=(self.model.n_vocab,))
                out.append(_log_softmax_at(logits, continuation[begin + i + 1]))
        self._logits = None
        return np.array(out, dtype=np.float64)

    def _decode(self, chunk: list[int], last: bool, every: bool = False) -> None:
        batch = self._batch
        start = len(self.tokens)
        batch.n_tokens = len(chunk)
        for i, token in enumerate(chunk):
            batch.token[i] = token
            batch.pos[i] = start + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = every
        batch.logits[len(chunk) - 1] = last
        status = self._llama.llama_decode(self.ctx, batch)
        if status != 0:
            # The cache may hold part of the batch now: drop it so state stays consistent.
            self._llama.llama_memory_seq_rm(self._memory, 0, start, -1)
            if status == 1:
                raise PromptError(
                    f"The context of {self.n_ctx} tokens is full.",
                    "raise --ctx or shorten the prompt",
                )
            raise RuntimeError(f"llama_decode failed with status {status}")

    def logits(self) -> np.ndarray:
        """The next-token logits: shape (n_vocab,), float32, a borrowed view.

        Valid until this stream's next catch_up; read it, never write to it.
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

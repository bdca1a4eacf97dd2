"""One llama.cpp context over a Model: a KV cache, a batch buffer and the decode call.

A context holds one or more token sequences (seq ids). Usually one Stream reads one
sequence of its own context; when both roles of a pair run on the same weights (the
in-context partner, or one file twice), both roles' streams share one context, so a
step decodes both roles' tokens in one batch: the weights are read once for the two.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import NamedTuple

import numpy as np

from ..errors import ModelFileError, PromptError
from . import decode_thread
from .model import Model
from .runtime import Interruptible


class Row(NamedTuple):
    """One token of a batch: which sequence, at which position, and whether its next-token
    logits are wanted."""

    token: int
    pos: int
    seq: int
    logits: bool


class Context:
    """A llama.cpp context: n_ctx KV cells shared by up to n_seq_max sequences (unified)."""

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
        llama = model._llama
        self.model = model
        self._llama = llama
        self._exit = ExitStack()
        params = llama.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = params.n_ubatch = min(n_batch, n_ctx)
        # Several sequences may share this context (answers decoded together, or both
        # roles of a pair on one model): one KV buffer for all (unified), so a shared
        # prompt is stored once and copied by reference. With one sequence in use,
        # results and speed are those of n_seq_max = 1 (measured).
        params.n_seq_max = max(1, n_seq_max)
        params.kv_unified = True
        # One logits row per sequence decoded (the decode loops) or a few rows (scoring):
        # never an n_batch x n_vocab buffer.
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
        self.memory = llama.llama_get_memory(ctx)
        self._batch = llama.llama_batch_init(self.n_batch, 0, 1)
        self._exit.callback(llama.llama_batch_free, self._batch)
        self._threads = n_threads
        self.outputs = 0  # logits rows the last decode produced
        # True when streams of both roles of a pair read this context: a decode for one
        # overwrites the other's rows too
        self.shared = shared

    def set_threads(self, n_threads: int) -> None:
        if n_threads != self._threads:
            self._llama.llama_set_n_threads(self.ctx, n_threads, n_threads)
            self._threads = n_threads

    def decode(self, rows: list[Row]) -> None:
        """One llama_decode of these rows (at most n_batch). On failure the rows' cells are
        removed again, so every sequence stays consistent."""
        if len(rows) > self.n_batch:
            raise ValueError(f"{len(rows)} rows do not fit a decode of {self.n_batch}")
        outputs = sum(row.logits for row in rows)
        if outputs > self.n_outputs:  # llama.cpp would abort the process (GGML_ASSERT)
            raise ValueError(f"{outputs} logits rows do not fit a decode of {self.n_outputs}")
        batch = self._batch
        batch.n_tokens = len(rows)
        for i, row in enumerate(rows):
            batch.token[i] = row.token
            batch.pos[i] = row.pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = row.seq
            batch.logits[i] = row.logits
        status = decode_thread.run(self._llama.llama_decode, self.ctx, batch)
        if status != 0:
            for seq in {row.seq for row in rows}:
                first = min(row.pos for row in rows if row.seq == seq)
                self.remove(seq, first)
            if status == 1:
                raise PromptError(
                    f"The context of {self.n_ctx} tokens is full.",
                    "raise --ctx (n_ctx in Python), or ask for fewer tokens or answers",
                )
            raise RuntimeError(f"llama_decode failed with status {status}")
        self.outputs = outputs

    def logits(self, index: int) -> np.ndarray:
        """Logits of the last decode's `index`-th output (rows with logits, in batch order):
        (n_vocab,) float32, borrowed until the next decode."""
        return self.output_rows()[index]

    def output_rows(self) -> np.ndarray:
        """Every logits row of the last decode: (outputs, n_vocab) float32, borrowed."""
        out = self._llama.llama_get_logits(self.ctx)
        return np.ctypeslib.as_array(out, shape=(self.outputs, self.model.n_vocab))

    def remove(self, seq: int, start: int = 0) -> bool:
        """Drop a sequence's cells from position `start` on (-1: all); False if it cannot."""
        begin = -1 if start <= 0 else start
        return bool(self._llama.llama_memory_seq_rm(self.memory, seq, begin, -1))

    def copy(self, source: int, target: int, end: int = -1) -> None:
        """Give `target` the cells of `source` (by reference: unified cache): every one,
        or those of positions below `end`."""
        self._llama.llama_memory_seq_cp(self.memory, source, target, -1, end)

    def close(self) -> None:
        self._exit.close()

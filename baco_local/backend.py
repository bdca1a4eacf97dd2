"""The one module that talks to llama.cpp (through llama-cpp-python's C bindings).

Two types:
- `Model`: the weights and vocabulary of one GGUF file, loaded once and shareable.
- `Stream`: one context (one KV cache) reading one token sequence over a `Model`.
  The decode loop pushes tokens to a stream and asks it to catch up when it needs
  the stream's next-token logits; until then pushed tokens wait, so a model whose
  logits are not needed costs nothing, and catching up is one batched decode.

Logits are exposed as a zero-copy float32 view of llama.cpp's output row
(`llama_get_logits_ith(ctx, -1)`), valid until that stream's next decode. Only one
output row is ever requested per decode, so no n_ctx x n_vocab buffer exists.

Native handles are owned by an ExitStack and released by `close()`.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from collections import deque
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from .errors import ModelFileError, PromptError

_GGUF_MAGIC = b"GGUF"
_LOG_LEVEL_ERROR = 4
_LOG_LEVEL_CONT = 5


class _LlamaRuntime:
    """Process-wide llama.cpp state: backend init and our log callback.

    llama-cpp-python installs its own log callback when imported; we replace it on
    first use (never at import) so that llama.cpp is silent unless `verbose`, while
    its recent error lines are kept to explain a failed load.
    """

    _lock = threading.Lock()
    _instance: _LlamaRuntime | None = None

    def __init__(self):
        import llama_cpp

        self.llama = llama_cpp
        self.verbose = False
        self.recent_errors: deque[str] = deque(maxlen=8)
        self._last_level = 0
        # Keep a reference: ctypes callbacks are freed when garbage collected.
        self._callback = llama_cpp.llama_log_callback(self._on_log)
        llama_cpp.llama_log_set(self._callback, ctypes.c_void_p(0))
        llama_cpp.llama_backend_init()

    @classmethod
    def get(cls, verbose: bool = False) -> _LlamaRuntime:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            cls._instance.verbose = cls._instance.verbose or verbose
            return cls._instance

    def _on_log(self, level: int, text: bytes, _user_data) -> None:
        message = text.decode("utf-8", errors="replace") if text else ""
        if level == _LOG_LEVEL_CONT:
            level = self._last_level
        self._last_level = level
        if level == _LOG_LEVEL_ERROR and message.strip():
            self.recent_errors.append(message.strip())
        if self.verbose:
            sys.stderr.write(message)


def gpu_available() -> bool:
    """True when this llama-cpp-python build can offload layers to a GPU (CUDA, Metal...)."""
    return bool(_LlamaRuntime.get().llama.llama_supports_gpu_offload())


def check_gguf_file(path: str | os.PathLike) -> Path:
    """Return the resolved path of a readable GGUF file, or raise ModelFileError saying why not."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelFileError(
            f"Model file not found: {path}",
            "check the path, or run `baco models list` to see the pairs you can use",
        )
    if path.is_dir():
        raise ModelFileError(
            f"{path} is a directory, not a model file.", "give the path of a .gguf file inside it"
        )
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise ModelFileError(
            f"Cannot read model file {path}: {e.strerror}.",
            "check the file's permissions",
        ) from None
    if magic != _GGUF_MAGIC:
        raise ModelFileError(
            f"{path} is not a GGUF model file (it does not start with 'GGUF').",
            "convert the model to GGUF (llama.cpp's convert_hf_to_gguf.py) or download a .gguf",
        )
    return path.resolve()


class Model:
    """The weights and vocabulary of one GGUF file.

    n_gpu_layers: None offloads every layer when the build has a GPU backend, else none.
    vocab_only: load only the vocabulary (for checks that need no weights).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        n_gpu_layers: int | None = None,
        vocab_only: bool = False,
        verbose: bool = False,
    ):
        self.path = check_gguf_file(path)
        self._runtime = _LlamaRuntime.get(verbose)
        llama = self._runtime.llama
        self._llama = llama
        self._exit = ExitStack()
        params = llama.llama_model_default_params()
        if n_gpu_layers is None or n_gpu_layers < 0:
            n_gpu_layers = 0x7FFFFFFF if llama.llama_supports_gpu_offload() else 0
        params.n_gpu_layers = n_gpu_layers
        params.vocab_only = vocab_only
        # Repacked CPU weights make results depend on how tokens are batched, so a seed
        # would not replay exactly after the prompt cache is reused (measured on Gemma 3
        # 270M Q4_K_M: logits differ by up to 1.1). Plain weights decode as fast here.
        params.use_extra_bufts = False
        self.n_gpu_layers = n_gpu_layers
        self._runtime.recent_errors.clear()
        handle = llama.llama_model_load_from_file(str(self.path).encode(), params)
        if not handle:
            detail = "; ".join(self._runtime.recent_errors) or "llama.cpp gave no reason"
            raise ModelFileError(
                f"llama.cpp could not load {self.path} ({detail}).",
                "the file may be truncated or made for a newer llama.cpp: download it again, "
                "or upgrade llama-cpp-python",
            )
        self.handle = handle
        self._exit.callback(llama.llama_model_free, handle)
        self.vocab = llama.llama_model_get_vocab(handle)
        self.n_vocab = int(llama.llama_vocab_n_tokens(self.vocab))
        self.n_ctx_train = int(llama.llama_model_n_ctx_train(handle))
        self.bos_id = int(llama.llama_vocab_bos(self.vocab))
        self.eos_id = int(llama.llama_vocab_eos(self.vocab))
        self.add_bos = bool(llama.llama_vocab_get_add_bos(self.vocab))
        self._piece_buffer = ctypes.create_string_buffer(256)

    # --- vocabulary -------------------------------------------------------------

    def tokenize(self, text: str, *, add_bos: bool = False, special: bool = True) -> list[int]:
        """Text -> token ids. special=True parses control tokens written as text."""
        data = text.encode("utf-8")
        capacity = len(data) + 8
        buffer = (self._llama.llama_token * capacity)()
        n = self._llama.llama_tokenize(
            self.vocab, data, len(data), buffer, capacity, add_bos, special
        )
        if n < 0:  # the buffer was too small: -n is the size needed
            capacity = -n
            buffer = (self._llama.llama_token * capacity)()
            n = self._llama.llama_tokenize(
                self.vocab, data, len(data), buffer, capacity, add_bos, special
            )
        return list(buffer[:n])

    def piece(self, token_id: int, *, special: bool = False) -> bytes:
        """One token's bytes as it appears in text (may end inside a UTF-8 character)."""
        buffer = self._piece_buffer
        n = self._llama.llama_token_to_piece(self.vocab, token_id, buffer, len(buffer), 0, special)
        if n < 0:
            buffer = ctypes.create_string_buffer(-n)
            n = self._llama.llama_token_to_piece(self.vocab, token_id, buffer, -n, 0, special)
        return buffer.raw[:n]

    def detokenize(self, token_ids) -> str:
        return b"".join(self.piece(t) for t in token_ids).decode("utf-8", errors="replace")

    def token_text(self, token_id: int) -> bytes:
        """The token's entry in the vocabulary (e.g. b'\\xe2\\x96\\x81the'), for comparisons."""
        return self._llama.llama_vocab_get_text(self.vocab, token_id) or b""

    def is_eog(self, token_id: int) -> bool:
        return bool(self._llama.llama_vocab_is_eog(self.vocab, token_id))

    def is_control(self, token_id: int) -> bool:
        return bool(self._llama.llama_vocab_is_control(self.vocab, token_id))

    def token_id_text(self, token_id: int) -> str:
        """A token's text with control tokens rendered (e.g. '<end_of_turn>')."""
        return self.piece(token_id, special=True).decode("utf-8", errors="replace")

    # --- metadata ---------------------------------------------------------------

    def metadata(self, key: str) -> str | None:
        buffer = ctypes.create_string_buffer(1 << 16)
        n = self._llama.llama_model_meta_val_str(self.handle, key.encode(), buffer, len(buffer))
        if n < 0:
            return None
        if n >= len(buffer):
            buffer = ctypes.create_string_buffer(n + 1)
            self._llama.llama_model_meta_val_str(self.handle, key.encode(), buffer, len(buffer))
        return buffer.value.decode("utf-8", errors="replace")

    def chat_template(self) -> str | None:
        """The GGUF's `tokenizer.chat_template`, or None when the file has none."""
        raw = self._llama.llama_model_chat_template(self.handle, None)
        return raw.decode("utf-8", errors="replace") if raw else None

    def description(self) -> str:
        buffer = ctypes.create_string_buffer(256)
        self._llama.llama_model_desc(self.handle, buffer, len(buffer))
        return buffer.value.decode("utf-8", errors="replace")

    def size_bytes(self) -> int:
        return int(self._llama.llama_model_size(self.handle))

    def close(self) -> None:
        self._exit.close()


class Stream:
    """One context over a Model: the token sequence that one role (base or aligned) reads.

    tokens: tokens already in the KV cache. pending: pushed, not yet evaluated.
    """

    def __init__(
        self, model: Model, *, n_ctx: int, n_batch: int, n_threads: int, n_outputs: int = 1
    ):
        llama = model._llama
        self.model = model
        self._llama = llama
        self._exit = ExitStack()
        params = llama.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = params.n_ubatch = min(n_batch, n_ctx)
        params.n_seq_max = 1
        # One logits row per decode (the decode loop), or a few rows (scoring): never an
        # n_batch x n_vocab buffer.
        params.n_outputs_max = max(1, min(n_outputs, params.n_batch))
        self.n_outputs = params.n_outputs_max
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
        ctx = llama.llama_init_from_model(model.handle, params)
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
        self._logits: np.ndarray | None = None

    @property
    def n_past(self) -> int:
        """Tokens in the sequence, evaluated or pending."""
        return len(self.tokens) + len(self.pending)

    def start(self, prompt: list[int]) -> None:
        """Make `prompt` the sequence, reusing the longest evaluated prefix in the cache.

        At least the last prompt token is left pending, so catching up yields logits.
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
        self.pending = list(prompt[keep:])
        self._prompt_end = len(prompt)

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

    def catch_up(self) -> None:
        """Evaluate pending tokens; afterwards `logits()` is the next-token row.

        Prompt tokens go in batches of n_batch, except the last. The last prompt token
        and generated tokens go one per decode, as an eager loop would feed them, so a
        stream that caught up late, or reused its cached prompt, holds exactly the same
        cache and logits as one that never waited (llama.cpp's numbers depend on how
        tokens are batched: up to 0.5 logits apart on Gemma 3 270M). Only the last decode computes logits, so a deferred
        token costs the transformer body, not the output layer (about 28% of a step for
        Gemma 3 270M, whose 262,144-token output layer dominates).
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
            # The prompt's last token is read alone, like every generated token: a cold
            # run and a run that reuses the cached prompt then compute its logits alike.
            batched = self._prompt_end - 1 - len(self.tokens)
            chunk = self.pending[: min(self.n_batch, batched) if batched > 0 else 1]
            self._decode(chunk, last=len(chunk) == len(self.pending))
            self.tokens.extend(chunk)
            del self.pending[: len(chunk)]
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

"""One GGUF file's weights and vocabulary, loaded once and shareable by several streams."""

from __future__ import annotations

import ctypes
import os
from contextlib import ExitStack

from ..errors import ModelFileError
from .file_check import inspect_model_file
from .runtime import Interruptible, _LlamaRuntime

# llama.cpp model parameters baco sets on every host instead of llama.cpp's defaults.
# use_extra_bufts False: no repacked CPU weights. They make results depend on how tokens
# are batched, so a seed would not replay exactly after the prompt cache is reused
# (measured on Gemma 3 270M Q4_K_M: logits differ by up to 1.1); on Intel AMX hosts
# llama.cpp segfaults decoding Gemma 3 Q4_K_M and SmolLM2 Q4_1 with them; and they did
# not pay where they run (README, "Repacked weights"). Tests build their llama_cpp.Llama
# references with these too (tests/llama_reference.py).
MODEL_PARAMS = {"use_extra_bufts": False}


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
        self.file_info = inspect_model_file(path)  # refuses what would crash llama.cpp
        self.path = self.file_info.path
        self._runtime = _LlamaRuntime.get(verbose)
        llama = self._runtime.llama
        self._llama = llama
        self._exit = ExitStack()
        params = llama.llama_model_default_params()
        if n_gpu_layers is None or n_gpu_layers < 0:
            n_gpu_layers = 0x7FFFFFFF if llama.llama_supports_gpu_offload() else 0
        params.n_gpu_layers = n_gpu_layers
        params.vocab_only = vocab_only
        for name, value in MODEL_PARAMS.items():
            setattr(params, name, value)
        self.n_gpu_layers = n_gpu_layers
        self._runtime.recent_errors.clear()
        with Interruptible() as interrupt:
            progress = llama.llama_progress_callback(interrupt.progress)  # kept alive here
            params.progress_callback = progress
            handle = llama.llama_model_load_from_file(str(self.path).encode(), params)
            if interrupt.requested and handle:
                llama.llama_model_free(handle)
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
        buffer = ctypes.create_string_buffer(64)  # per call: safe from any thread
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

    @property
    def adds_space_prefix(self) -> bool:
        """True when the tokenizer puts a space before its input (SentencePiece's
        add_space_prefix): "a" then comes back as " a"."""
        if not hasattr(self, "_adds_space"):
            pieces = b"".join(self.piece(t) for t in self.tokenize("a", special=False))
            self._adds_space = pieces == b" a"
        return self._adds_space

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

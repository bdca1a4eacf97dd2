"""Prompt prefixes kept on disk, so a new process skips re-reading a long preamble.

The in-context aligned partner reads the same alignment preamble (about 470 tokens
for Gemma) before every conversation. Reading it costs half a second on this
machine with a 270M model and seconds with larger ones, on every `baco run`. The
first time a stream reads it, its cache is saved as a llama.cpp state file; later
processes load the file instead. The preamble is always read as a segment of its
own, so an answer is the same whether its prefix was computed or loaded.

Files live in cache_dir()/prompt-cache, one per (model file, runtime settings,
prefix tokens); they are written to a temporary name and renamed, a file that fails
to load is deleted, and only the most recently used few are kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from ..files import replacing
from ..paths import cache_dir

KEEP_FILES = 8


class PrefixStore:
    """Loads and saves one model's shared prompt prefixes for streams over it."""

    def __init__(
        self,
        model,
        n_ctx: int,
        folder: Path | None = None,
        keep: int = KEEP_FILES,
        layout: str = "",
    ):
        """layout: how the stream's context is laid out (one context for both roles, or
        one each): where cells lie changes llama.cpp's rounding, so each keeps its own."""
        self.folder = folder or cache_dir() / "prompt-cache"
        self.keep = keep
        stat = model.path.stat()
        import llama_cpp

        self._identity = "\n".join(
            map(
                str,
                (
                    model.path,
                    stat.st_size,
                    stat.st_mtime_ns,
                    llama_cpp.__version__,
                    n_ctx,
                    model.n_gpu_layers,
                    layout,
                ),
            )
        )
        self.loads = 0  # how many prefixes came from disk (for tests and the curious)

    def path_for(self, tokens: list[int]) -> Path:
        digest = hashlib.sha256(self._identity.encode())
        digest.update(",".join(map(str, tokens)).encode())
        return self.folder / f"{digest.hexdigest()[:32]}.state"

    def load(self, stream, tokens: list[int]) -> bool:
        """Fill `stream` with the saved prefix `tokens`; False (and nothing kept) if absent."""
        path = self.path_for(tokens)
        if not path.is_file():
            return False
        if stream.load_state(str(path), tokens):
            with contextlib.suppress(OSError):
                os.utime(path)  # most recently used
            self.loads += 1
            return True
        with contextlib.suppress(OSError):
            path.unlink()  # unreadable or from another build: compute it again
        return False

    def save(self, stream) -> None:
        """Save the stream's sequence: called when it has just read the prefix."""
        path = self.path_for(stream.tokens)
        if path.is_file():
            return
        try:
            with replacing(path, suffix=".state") as temporary:
                if not stream.save_state(str(temporary)):
                    raise OSError("llama.cpp could not write the state file")
            self._prune()
        except OSError:
            pass  # a cache is optional: a full disk only costs the next run some time

    def _prune(self) -> None:
        files = sorted(self.folder.glob("*.state"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in files[self.keep :]:
            with contextlib.suppress(OSError):
                old.unlink()

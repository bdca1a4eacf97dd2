"""Will a pair fit in memory? Checked once its files are read, before any context exists.

What a pair needs: each distinct model file's weights (the file's size) plus one KV
cache per context: f16 keys and values for every layer, n_ctx tokens long (baco keeps
the full cache on sliding-window layers too, so that rollback always works). What
there is: MemAvailable on Linux (/proc/meminfo: free memory plus what the kernel can
reclaim, such as a model file already in the page cache), free, inactive and
speculative pages on macOS (vm_stat). Elsewhere, or when layers are offloaded to a GPU
(whose memory this does not see), the check is skipped and llama.cpp decides.

Measured here: Gemma 3 270M takes 18,432 bytes of cache per token (72 MiB at --ctx
4096, as llama.cpp reports), SmolLM2-135M 23,040 (90 MiB).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import NotEnoughMemoryError

_MEMINFO = Path("/proc/meminfo")
_SMALLEST_CTX = 256


def available_memory() -> int | None:
    """Bytes of memory available to a new program now, or None when it cannot be told."""
    try:
        if sys.platform.startswith("linux"):
            return parse_meminfo(_MEMINFO.read_text(encoding="ascii"))
        if sys.platform == "darwin":
            done = subprocess.run(["vm_stat"], capture_output=True, text=True, timeout=5)
            return parse_vm_stat(done.stdout) if done.returncode == 0 else None
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    return None


def parse_meminfo(text: str) -> int | None:
    """MemAvailable from /proc/meminfo's text, in bytes."""
    found = re.search(r"^MemAvailable:\s+(\d+)\s*kB", text, re.MULTILINE)
    return int(found[1]) * 1024 if found else None


def parse_vm_stat(text: str) -> int | None:
    """Free, inactive and speculative pages from macOS's vm_stat output, in bytes."""
    size = re.search(r"page size of (\d+) bytes", text)
    counts = dict(re.findall(r"^Pages (free|inactive|speculative):\s+(\d+)", text, re.MULTILINE))
    if size is None or "free" not in counts:
        return None
    return int(size[1]) * sum(int(n) for n in counts.values())


def context_tokens(model, n_ctx: int) -> int:
    """The context a stream of `model` really gets: n_ctx, at most the training length."""
    trained = model.n_ctx_train
    return min(n_ctx, trained) if trained else n_ctx


def require_memory(models: Sequence, n_ctx: int) -> None:
    """Raise NotEnoughMemoryError unless the weights of `models` (each distinct one once)
    and one context of n_ctx tokens per entry fit in the memory available.

    models: backend Models, one entry per context (a shared model appears twice).
    """
    if any(model.n_gpu_layers for model in models):
        return  # the weights and caches go (partly) to the GPU, whose memory is not seen here
    available = available_memory()
    if available is None:
        return
    distinct = {id(model): model for model in models}.values()
    weights = sum(model.file_info.size_bytes for model in distinct)
    per_token = [_cache_per_token(model) for model in models]
    caches = sum(p * context_tokens(m, n_ctx) for p, m in zip(per_token, models))
    if weights + caches <= available:
        return
    raise NotEnoughMemoryError(
        f"Not enough memory for this pair at --ctx {n_ctx}: the weights take "
        f"{_size(weights)} and the context caches {_size(caches)} ({len(models)} contexts), "
        f"{_size(weights + caches)} in all, but {_size(available)} is available.",
        _advice(available, weights, sum(per_token), n_ctx),
    )


def _cache_per_token(model) -> int:
    hparams = model.file_info.hparams
    return hparams.kv_bytes_per_token if hparams is not None else 0


def _advice(available: int, weights: int, per_token: int, n_ctx: int) -> str:
    fits = (available - weights) // per_token if per_token else 0
    fits = fits // _SMALLEST_CTX * _SMALLEST_CTX
    smaller = "use a smaller quantization (e.g. Q4_K_M instead of Q8_0 or F16)"
    if _SMALLEST_CTX <= fits < n_ctx:
        return f"lower the context with --ctx {fits} (or less), {smaller}, or close other programs"
    return (
        f"{smaller} or a smaller model, or close other programs: the weights alone need "
        f"{_size(weights)}"
    )


def _size(n_bytes: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes} B"

"""The one package that talks to llama.cpp (through llama-cpp-python's C bindings).

Three types:
- `Model` (model.py): the weights and vocabulary of one GGUF file, loaded once and
  shareable.
- `Stream` (stream.py): one token sequence over a `Model`, in a context (one KV cache)
  of its own or, for the second role of a pair on one model, in the first role's
  context with sequences and cells of its own (`Stream.on`, `limit`). The decode loop
  pushes tokens to a stream and asks it to catch up when it needs the stream's
  next-token logits; until then pushed tokens wait, so a model whose
  logits are not needed costs only its transformer body, never its output layer.
- `Sequences` (sequences.py): every sequence of one stream's context, as a pool:
  answers of different requests open, read their prompts a chunk at a time (or share
  one read already), decode together (one batch row per token, logits only where
  needed, every row of a drafted run when it is scored) and close, freeing their cells.
runtime.py holds the process-wide part: backend init, the log callback. file_check.py
checks every file before llama.cpp sees it; memory.py whether a pair fits in memory.

Logits are exposed as a zero-copy float32 view of llama.cpp's output rows, valid until
the context's next decode (a stream in a shared context keeps a copy of its row). Only
the rows a decode needs get logits, so no n_ctx x n_vocab buffer exists.

Native handles are owned by an ExitStack and released by `close()`.
"""

from .file_check import check_gguf_file, check_writes_text
from .memory import require_memory
from .model import Model
from .runtime import gpu_available
from .sequences import Sequences
from .stream import Stream

__all__ = [
    "Model",
    "Sequences",
    "Stream",
    "check_gguf_file",
    "check_writes_text",
    "gpu_available",
    "require_memory",
]

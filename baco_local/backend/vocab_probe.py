"""Load a file's vocabulary in a short-lived child process, so that a crash stays there.

For tokenizers whose failure modes are not checked in Python (WordPiece, Unigram, RWKV,
PLaMo-2...), the child does what baco later does with a vocabulary: a vocabulary-only
load, every token's text and piece, and tokenizing a few texts with unusual characters.
If llama.cpp aborts, the child dies by a signal and the parent raises ModelFileError
naming the file and llama.cpp's last words. It costs ~0.4 s, only for those tokenizers.

Run as `python -m baco_local.backend.vocab_probe FILE`: exit 0 when the vocabulary
works, 3 when llama.cpp refused it (its errors on stdout).
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from ..errors import ModelFileError

PROBE_TIMEOUT_S = 120.0
_LOAD_FAILED = 3
_SAMPLES = ("Hello, world!\n", "  two  spaces\tand a tab", "Ωμέγα 漢字 🙂 \x00\x7f", "")
_LAST_WORDS = re.compile(r"(GGML_ASSERT.*|fatal error.*|terminate called.*|what\(\):.*)")
_HINT = (
    "the file's tokenizer data is malformed: download it again, or convert the model "
    "again with a current llama.cpp"
)


def probe_vocabulary(path: Path, *, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Raise ModelFileError unless llama.cpp reads `path`'s vocabulary without failing."""
    env = {**os.environ, "GGML_NO_BACKTRACE": "1"}  # no gdb backtrace from an abort
    command = [sys.executable, "-m", __name__, str(path)]
    try:
        done = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s, env=env
        )
    except subprocess.TimeoutExpired:
        raise ModelFileError(
            f"Cannot load {path}: reading its vocabulary took over {timeout_s:.0f} s.", _HINT
        ) from None
    if done.returncode == 0:
        return
    output = (done.stdout + done.stderr).decode("utf-8", errors="replace")
    if done.returncode == _LOAD_FAILED:
        reason = _reason(done.stdout.decode("utf-8", errors="replace"))
        raise ModelFileError(
            f"Cannot load {path}: llama.cpp refused its vocabulary ({reason}).", _HINT
        )
    raise ModelFileError(
        f"Cannot load {path}: llama.cpp crashed ({_exit_name(done.returncode)}) reading its "
        f"vocabulary{_last_words(output)}.",
        _HINT,
    )


def _reason(errors: str) -> str:
    """llama.cpp's first error without its function-name prefixes."""
    first = errors.strip().split("; ")[0] or "no reason given"
    found = re.search(r".*error loading model(?: vocabulary)?: (.*)", first)
    return found[1] if found else first


def _exit_name(returncode: int) -> str:
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit status {returncode}"


def _last_words(output: str) -> str:
    """llama.cpp's assertion, without the build folder's path: ': GGML_ASSERT(...) failed'."""
    found = _LAST_WORDS.search(output)
    return f": {found[1].strip()}" if found else ""


def _exercise(llama, vocab) -> None:
    """What baco does with a vocabulary: every piece and flag, and some tokenizing."""
    n_tokens = llama.llama_vocab_n_tokens(vocab)
    buffer = ctypes.create_string_buffer(256)
    for token in range(n_tokens):
        for special in (False, True):
            llama.llama_token_to_piece(vocab, token, buffer, len(buffer), 0, special)
        llama.llama_vocab_is_eog(vocab, token)
        llama.llama_vocab_is_control(vocab, token)
        llama.llama_vocab_get_text(vocab, token)
    tokens = (llama.llama_token * 512)()
    for text in _SAMPLES:
        data = text.encode("utf-8")
        for special in (False, True):
            llama.llama_tokenize(vocab, data, len(data), tokens, len(tokens), True, special)


def _main(argv: list[str]) -> int:
    from .runtime import _LlamaRuntime

    runtime = _LlamaRuntime.get()
    llama = runtime.llama
    params = llama.llama_model_default_params()
    params.vocab_only = True
    model = llama.llama_model_load_from_file(argv[0].encode(), params)
    if not model:
        print("; ".join(runtime.recent_errors) or "llama.cpp gave no reason")
        return _LOAD_FAILED
    _exercise(llama, llama.llama_model_get_vocab(model))
    llama.llama_model_free(model)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))

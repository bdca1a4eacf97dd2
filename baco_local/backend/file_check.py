"""Every model file is checked here before llama.cpp opens it.

In order: it is a regular file (a FIFO, socket or device is refused without opening
it, so nothing blocks); it starts with 'GGUF'; its header is well formed and bounded
(gguf_format.py); and what it says is consistent where llama.cpp would otherwise
abort() the whole process or fail with a terse message (gguf_checks.py for the
architecture and tensors, gguf_vocab.py for the vocabulary). Tokenizers other than
SentencePiece ("llama") and BPE ("gpt2") are also loaded, vocabulary only, in a
short-lived child process (vocab_probe.py), so that a crash there is reported as an
error naming the file.

A file that passed is remembered by its path, size, modification time and inode, in
this process and in a small marker under cache_dir()/checked (as downloads remember
their sha256), so loading it again costs a stat and a small read; a changed file, or
a newer version of these checks, is checked afresh. The first check of the Gemma 3
270M file (262,144 tokens) takes ~35 ms here, SmolLM2-135M ~11 ms.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import ModelFileError
from .gguf_checks import Hparams, Problem, check_shapes, check_tensor_data, read_hparams
from .gguf_format import MAGIC, GGUFFormatError, read_header
from .gguf_vocab import CHECKED_TOKENIZERS, check_vocabulary

CHECKS_VERSION = 2  # bump when a check changes: remembered files are then checked again
_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


@dataclass(frozen=True)
class ModelFileInfo:
    """What the checks learnt about one GGUF model file."""

    path: Path  # resolved
    size_bytes: int
    tokenizer: str
    n_vocab: int
    hparams: Hparams | None  # None for a vocabulary-only file


def inspect_model_file(path: str | os.PathLike) -> ModelFileInfo:
    """Check a model file; return what it holds or raise ModelFileError saying why not."""
    path = Path(path).expanduser()
    info = _stat_regular(path)
    fingerprint = (str(path.resolve()), info.st_size, info.st_mtime_ns, info.st_ino, info.st_dev)
    return _inspect(fingerprint)


@functools.lru_cache(maxsize=32)
def _inspect(fingerprint: tuple) -> ModelFileInfo:
    found = _recall(fingerprint)
    if found is None:
        found = _check(Path(fingerprint[0]))
        _remember(fingerprint, found)
    return found


def _check(path: Path) -> ModelFileInfo:
    with _open_regular(path) as file:
        size = os.fstat(file.fileno()).st_size
        if file.read(4) != MAGIC:
            raise ModelFileError(
                f"{path} is not a GGUF model file (it does not start with 'GGUF').",
                "convert the model to GGUF (llama.cpp's convert_hf_to_gguf.py) or download a .gguf",
            )
        file.seek(0)
        try:
            header = read_header(file, size)
        except GGUFFormatError as error:
            raise ModelFileError(
                f"Cannot load {path}: its GGUF header is malformed: {error}.",
                "the file is damaged or truncated: download it again",
            ) from None
        except OSError as error:
            raise _unreadable(path, error) from None
    try:
        check_tensor_data(header)
        tokenizer, n_vocab = check_vocabulary(header)
        hparams = read_hparams(header) if header.tensors else None
        if hparams is not None:
            check_shapes(header, hparams, n_vocab)
    except Problem as problem:
        raise ModelFileError(f"Cannot load {path}: {problem.problem}.", problem.hint) from None
    if tokenizer not in CHECKED_TOKENIZERS:
        from .vocab_probe import probe_vocabulary

        probe_vocabulary(path)
    return ModelFileInfo(path, size, tokenizer, n_vocab, hparams)


def _stat_regular(path: Path) -> os.stat_result:
    """stat (never open) the path: only a regular file goes on to be opened."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ModelFileError(
            f"Model file not found: {path}",
            "check the path, or run `baco models list` to see the pairs you can use",
        ) from None
    except OSError as error:
        raise _unreadable(path, error) from None
    if stat.S_ISDIR(info.st_mode):
        raise ModelFileError(
            f"{path} is a directory, not a model file.", "give the path of a .gguf file inside it"
        )
    if not stat.S_ISREG(info.st_mode):
        kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
        raise ModelFileError(
            f"{path} is {kind}, not a model file; baco only reads regular files, so that "
            "reading it can never hang.",
            "give the path of a .gguf file on disk (copy the model into a file first)",
        )
    return info


def _open_regular(path: Path):
    """Open without blocking (O_NONBLOCK: a FIFO put in the file's place since the stat
    opens at once) and refuse anything that turns out not to be a regular file."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as error:
        raise _unreadable(path, error) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        _stat_regular(path)  # raises with the kind of file it is now
        raise ModelFileError(f"{path} changed while it was opened.", "try again")
    return os.fdopen(fd, "rb")


def _unreadable(path: Path, error: OSError) -> ModelFileError:
    return ModelFileError(
        f"Cannot read model file {path}: {error.strerror or error}.",
        "check the file's permissions",
    )


# --- remembering files that passed ---------------------------------------------------


def _marker(fingerprint: tuple) -> Path:
    from ..paths import cache_dir

    name = hashlib.sha256(fingerprint[0].encode("utf-8")).hexdigest()[:24]
    return cache_dir() / "checked" / f"{name}.json"


def _recall(fingerprint: tuple) -> ModelFileInfo | None:
    try:
        saved = json.loads(_marker(fingerprint).read_text(encoding="utf-8"))
        if saved["version"] != CHECKS_VERSION or saved["fingerprint"] != list(fingerprint):
            return None
        info = saved["info"]
        hparams = info["hparams"] and Hparams(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in info["hparams"].items()}
        )
        return ModelFileInfo(
            Path(info["path"]), info["size_bytes"], info["tokenizer"], info["n_vocab"], hparams
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _remember(fingerprint: tuple, info: ModelFileInfo) -> None:
    from ..files import write_atomic

    saved = {"version": CHECKS_VERSION, "fingerprint": list(fingerprint), "info": asdict(info)}
    with contextlib.suppress(OSError):  # a read-only cache: check again next time
        write_atomic(_marker(fingerprint), json.dumps(saved, default=str) + "\n")


def check_writes_text(path: str | os.PathLike) -> None:
    """Raise ModelFileError when the file is an embedding model (pooled, or attention
    that is not causal, as BERT's): llama.cpp would decode it, answer with a row per
    token and abort the process on the rows it did not reserve."""
    info = inspect_model_file(path)
    if info.hparams is not None and info.hparams.embeds_only:
        raise ModelFileError(
            f"{info.path.name} is an embedding model ({info.hparams.architecture}): it turns "
            "text into vectors and cannot write text.",
            "give a text-generation GGUF (a base model, or its instruct version) for "
            "--base and --aligned",
        )


def check_gguf_file(path: str | os.PathLike) -> Path:
    """Return the resolved path of a sound GGUF model file, or raise ModelFileError saying
    why not (everything this module checks)."""
    return inspect_model_file(path).path

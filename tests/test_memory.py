"""The memory check at load: weights plus context caches against the memory available."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from baco_local import Pair
from baco_local.backend import Model, memory
from baco_local.cli import main
from baco_local.errors import BacoError, NotEnoughMemoryError

MEMINFO = """MemTotal:       24576000 kB
MemFree:         1000000 kB
MemAvailable:    8000000 kB
Buffers:           10000 kB
"""
VM_STAT = """Mach Virtual Memory Statistics: (page size of 16384 bytes)
Pages free:                               1000.
Pages active:                             9999.
Pages inactive:                            500.
Pages speculative:                         100.
"""


def test_available_memory_is_read_from_the_os_texts():
    assert memory.parse_meminfo(MEMINFO) == 8_000_000 * 1024
    assert memory.parse_meminfo("MemTotal: 1 kB\n") is None
    assert memory.parse_vm_stat(VM_STAT) == 1600 * 16384


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/meminfo")
def test_available_memory_here_is_a_plausible_number():
    total_kb = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())[1]
    assert 0 < memory.available_memory() <= int(total_kb) * 1024


def fake_model(size: int, per_token: int, n_ctx_train: int = 4096, gpu_layers: int = 0):
    hparams = SimpleNamespace(kv_bytes_per_token=per_token)
    info = SimpleNamespace(size_bytes=size, hparams=hparams)
    return SimpleNamespace(file_info=info, n_ctx_train=n_ctx_train, n_gpu_layers=gpu_layers)


def test_a_shared_model_counts_its_weights_once_and_its_caches_twice(monkeypatch):
    model = fake_model(size=100_000_000, per_token=10_000)
    # 100 MB of weights + 2 contexts x 4096 tokens x 10 kB = 181.92 MB
    monkeypatch.setattr(memory, "available_memory", lambda: 181_920_000)
    memory.require_memory([model, model], 4096)
    monkeypatch.setattr(memory, "available_memory", lambda: 181_919_999)
    with pytest.raises(NotEnoughMemoryError) as caught:
        memory.require_memory([model, model], 4096)
    assert "weights take 100.0 MB" in caught.value.message
    assert "caches 81.9 MB (2 contexts)" in caught.value.message
    assert "--ctx 3840" in caught.value.hint  # (181.9 MB - 100 MB) / 20 kB, in steps of 256


def test_the_context_is_capped_at_the_training_length_and_a_gpu_skips_the_check(monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda: 100_000_000 + 2 * 512 * 10_000)
    memory.require_memory([fake_model(100_000_000, 10_000, n_ctx_train=512)] * 2, 32768)
    monkeypatch.setattr(memory, "available_memory", lambda: 1)
    memory.require_memory([fake_model(10**12, 10**6, gpu_layers=99)], 4096)


def test_weights_that_alone_do_not_fit_ask_for_a_smaller_model(monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda: 50_000_000)
    with pytest.raises(NotEnoughMemoryError) as caught:
        memory.require_memory([fake_model(100_000_000, 10_000)], 4096)
    assert "smaller quantization" in caught.value.hint and "100.0 MB" in caught.value.hint


def test_the_tiny_models_cache_per_token_is_hand_computed(tiny):
    # 2 layers x 4 KV heads x (16 key + 16 value dims) x 2 bytes (f16)
    model = Model(tiny.base, vocab_only=True)
    try:
        assert model.file_info.hparams.kv_bytes_per_token == 2 * 4 * (16 + 16) * 2
    finally:
        model.close()


def test_a_pair_too_big_for_the_memory_is_refused_with_the_numbers(tiny, monkeypatch, capsys):
    weights = tiny.base.stat().st_size + tiny.aligned.stat().st_size
    # room for the weights and two 1024-token contexts (512 bytes a token), not for 4096
    monkeypatch.setattr(memory, "available_memory", lambda: weights + 2 * 512 * 1024 + 100)
    with pytest.raises(BacoError) as caught:
        Pair.load(base=tiny.base, aligned=tiny.aligned, n_ctx=4096)
    assert isinstance(caught.value, NotEnoughMemoryError)
    assert "--ctx 1024" in caught.value.hint

    code = main(["run", "hi", "--base", str(tiny.base), "--aligned", str(tiny.aligned)])
    err = capsys.readouterr().err
    assert code == 2 and "Not enough memory" in err and "--ctx 1024" in err
    assert "Traceback" not in err

    with Pair.load(base=tiny.base, aligned=tiny.aligned, n_ctx=1024, n_threads=1) as pair:
        assert pair.generate("The cat", max_tokens=3, seed=1).stats.tokens > 0


@pytest.mark.gemma
def test_gemmas_cache_per_token_is_what_llama_cpp_allocates(gemma_path):
    # llama.cpp reports 12 MiB (3 global layers) + 60 MiB (15 sliding-window layers, kept
    # full) of KV cache at n_ctx 4096: 72 MiB / 4096 = 18,432 bytes a token
    model = Model(gemma_path, vocab_only=True)
    try:
        assert model.file_info.hparams.kv_bytes_per_token * 4096 == 72 * 2**20
    finally:
        model.close()

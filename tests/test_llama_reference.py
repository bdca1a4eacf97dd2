"""No test builds a llama.cpp model with llama.cpp's defaults: they repack weights, which
crashes llama.cpp on Intel AMX hosts and gives other logits than baco reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

llama_cpp = pytest.importorskip("llama_cpp")

from llama_reference import reference_llama  # noqa: E402

from baco_local.backend.model import MODEL_PARAMS  # noqa: E402

TESTS = Path(__file__).parent


def test_no_test_builds_a_model_with_llama_cpp_defaults():
    offenders = []
    for path in sorted(TESTS.glob("*.py")):
        if path.name in ("llama_reference.py", Path(__file__).name):
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"\bLlama\(", text):
            offenders.append(f"{path.name}: builds llama_cpp.Llama (use reference_llama)")
        if "llama_model_default_params()" in text and "MODEL_PARAMS" not in text:
            offenders.append(f"{path.name}: loads with default params (set MODEL_PARAMS)")
    assert offenders == []


def test_the_reference_loads_as_baco_does_and_leaves_the_defaults_alone(tiny):
    assert MODEL_PARAMS == {"use_extra_bufts": False}
    llm = reference_llama(tiny.base, n_ctx=256, n_batch=64)
    try:
        assert llm.model_params.use_extra_bufts is False
        assert llm.tokenize(b"the cat")  # a working model
    finally:
        llm.close()
    # llama.cpp's own default is to repack; the reference changed it only while loading
    assert llama_cpp.llama_model_default_params().use_extra_bufts is True

"""llama_cpp.Llama objects for tests, loaded the way baco loads its models.

llama-cpp-python's `Llama` has no argument for every model parameter, and its defaults
are not baco's: with llama.cpp's default repacked weights ("extra buffers") it segfaults
on Intel AMX hosts decoding Gemma 3 270M Q4_K_M, and its logits are not those baco
reads. Every test that wants llama-cpp-python's own API builds its model here, with
baco's MODEL_PARAMS (backend/model.py: use_extra_bufts off); test_llama_reference.py
checks that none builds one with the defaults.
"""

from __future__ import annotations

import contextlib
import os

import llama_cpp
import llama_cpp.llama

from baco_local.backend.model import MODEL_PARAMS


def reference_llama(path: str | os.PathLike, **kwargs) -> llama_cpp.Llama:
    """llama_cpp.Llama(model_path=path, verbose=False, **kwargs) with baco's model
    parameters (repacking off)."""
    with _baco_model_params():
        llm = llama_cpp.Llama(model_path=str(path), verbose=False, **kwargs)
    for name, value in MODEL_PARAMS.items():
        assert getattr(llm.model_params, name) == value, name
    return llm


@contextlib.contextmanager
def _baco_model_params():
    """While a Llama is built, its llama_model_default_params() returns baco's params."""
    module = llama_cpp.llama.llama_cpp  # the module Llama.__init__ reads the defaults from
    default = module.llama_model_default_params

    def params():
        found = default()
        for name, value in MODEL_PARAMS.items():
            setattr(found, name, value)
        return found

    module.llama_model_default_params = params
    try:
        yield
    finally:
        module.llama_model_default_params = default

"""Malformed tiny GGUF models, one per check in baco_local/backend/gguf_checks.py.

Each case starts from the tiny llama model of gguf_factory (same vocabulary, same
weights) and breaks one thing, either through the gguf writer (a key, an array, a
tensor) or by patching the bytes of a good file (counts and lengths that the writer
would never write). `ABORTS` lists the cases that make llama.cpp (llama-cpp-python
0.3.36) abort() the process when it loads the file or tokenizes text with it;
test_hostile_files.py checks that they really do, in a child process.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import gguf
import gguf_factory as factory

N_EMBD, N_LAYER, N_HEAD, N_FF = 64, 2, 4, 128


def write_model(
    path: Path,
    *,
    tokenizer: str = "llama",
    texts: Callable[[list], list] | None = None,
    scores: Callable[[list], list] | None = None,
    types: Callable[[list], list] | None = None,
    hparams: dict | None = None,
    drop: tuple[str, ...] = (),
    extra: Callable[[gguf.GGUFWriter], None] | None = None,
    tensors: Callable[[dict], None] | None = None,
) -> Path:
    """The tiny model with edits: functions that change the token texts, scores or types,
    hparams that replace llama.* numbers, llama.* keys to drop, extra keys, tensor edits."""
    token_texts, token_scores, token_types = factory.build_vocab()
    writer = gguf.GGUFWriter(path, "llama")
    numbers = {
        "context_length": 4096,
        "embedding_length": N_EMBD,
        "block_count": N_LAYER,
        "feed_forward_length": N_FF,
        "attention.head_count": N_HEAD,
        "attention.head_count_kv": N_HEAD,
        "rope.dimension_count": N_EMBD // N_HEAD,
    }
    numbers.update(hparams or {})
    for key, value in numbers.items():
        if key not in drop:
            writer.add_uint32(f"llama.{key}", value)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_tokenizer_model(tokenizer)
    if tokenizer == "gpt2":
        writer.add_tokenizer_pre("gpt-2")
        writer.add_token_merges(["a b"])
    writer.add_token_list((texts or list)(token_texts))
    writer.add_token_scores((scores or list)(token_scores))
    writer.add_token_types((types or list)(token_types))
    writer.add_bos_token_id(factory.BOS_ID)
    writer.add_eos_token_id(factory.EOS_ID)
    writer.add_add_space_prefix(False)
    if extra is not None:
        extra(writer)
    weights = factory._model_tensors(
        1, token_texts, token_types, n_embd=N_EMBD, n_layer=N_LAYER, n_ff=N_FF, logit_scale=3.0
    )
    if tensors is not None:
        tensors(weights)
    for name, value in weights.items():
        writer.add_tensor(name, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _patched(path: Path, find: bytes, skip: int, fmt: str, value: int) -> Path:
    """A good model whose bytes at (just after `find`) + skip are `value` packed as fmt."""
    write_model(path)
    data = bytearray(path.read_bytes())
    struct.pack_into("<" + fmt, data, data.find(find) + len(find) + skip, value)
    path.write_bytes(bytes(data))
    return path


def _truncated(path: Path) -> Path:
    write_model(path)
    path.write_bytes(path.read_bytes()[:-50_000])
    return path


def _duplicate(texts: list) -> list:
    texts = list(texts)
    texts[300] = texts[301]
    return texts


def _without_byte_tokens(texts: list) -> list:
    return [f"byte{text}" if text.startswith("<0x") else text for text in texts]


def _narrow_query(weights: dict) -> None:
    weights["blk.0.attn_q.weight"] = weights["blk.0.attn_q.weight"][: N_EMBD // 2]


def _short_output(weights: dict) -> None:
    weights["output.weight"] = weights["output.weight"][:-3]


def _two_more_tokens(texts: list) -> list:
    return [*texts, "zz1", "zz2"]


def _two_more(values: list) -> list:
    return [*values, values[-1], values[-1]]


# name -> (writer, words the error message must contain)
CASES: dict[str, tuple[Callable[[Path], Path], tuple[str, ...]]] = {
    "duplicate-token": (lambda p: write_model(p, texts=_duplicate), ("twice", "ids 300 and 301")),
    "no-layers": (lambda p: write_model(p, hparams={"block_count": 0}), ("block_count is 0",)),
    "too-many-layers": (
        lambda p: write_model(p, hparams={"block_count": 513}),
        ("block_count is 513",),
    ),
    "more-experts-used-than-exist": (
        lambda p: write_model(p, hparams={"expert_count": 2, "expert_used_count": 3}),
        ("expert_used_count is 3 for 2 experts",),
    ),
    "too-many-experts": (
        lambda p: write_model(p, hparams={"expert_count": 2000, "expert_used_count": 2}),
        ("expert_count is 2000",),
    ),
    "unknown-rope-scaling": (
        lambda p: write_model(p, extra=lambda w: w.add_string("llama.rope.scaling.type", "bogus")),
        ("rope.scaling.type is 'bogus'",),
    ),
    "no-vocabulary": (lambda p: write_model(p, tokenizer="no_vocab"), ("no vocabulary",)),
    "no-byte-tokens": (
        lambda p: write_model(p, texts=_without_byte_tokens),
        ("of the 256 byte tokens",),
    ),
    "wordpiece-with-byte-tokens": (  # the tiny vocabulary's byte tokens are typed BYTE
        lambda p: write_model(p, tokenizer="bert"),
        ("crashed (SIGABRT)", "vocabulary"),
    ),
    "short-scores": (
        lambda p: write_model(p, scores=lambda s: s[:-10]),
        ("tokenizer.ggml.scores has 542 entries for 552 tokens",),
    ),
    "short-token-types": (
        lambda p: write_model(p, types=lambda t: t[:-10]),
        ("tokenizer.ggml.token_type has 542 entries for 552 tokens",),
    ),
    "tokens-without-embeddings": (
        lambda p: write_model(p, texts=_two_more_tokens, scores=_two_more, types=_two_more),
        ("token_embd.weight", "554 tokens"),
    ),
    "output-rows": (lambda p: write_model(p, tensors=_short_output), ("output.weight", "549")),
    "missing-block-count": (
        lambda p: write_model(p, drop=("block_count",)),
        ("lacks the key llama.block_count",),
    ),
    "query-shape": (
        lambda p: write_model(p, tensors=_narrow_query),
        ("blk.0.attn_q.weight", "64 x 32"),
    ),
    "huge-token-count": (
        lambda p: _patched(p, b"tokenizer.ggml.tokens", 8, "Q", 1 << 40),
        ("header is malformed", "cannot fit"),
    ),
    "huge-string": (
        lambda p: _patched(p, b"tokenizer.ggml.tokens", 16, "Q", 1 << 40),
        ("header is malformed", "past the end"),
    ),
    "huge-tensor-count": (
        lambda p: _patched(p, b"GGUF", 4, "Q", 1 << 40),
        ("header is malformed", "tensors"),
    ),
    "truncated": (_truncated, ("truncated", "ends at byte")),
}

# Cases that abort llama.cpp itself (checked in a child process by the tests).
ABORTS = (
    "duplicate-token",
    "no-layers",
    "too-many-layers",
    "more-experts-used-than-exist",
    "too-many-experts",
    "unknown-rope-scaling",
    "no-vocabulary",
    "no-byte-tokens",
    "wordpiece-with-byte-tokens",
)

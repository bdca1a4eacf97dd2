"""What a GGUF header must satisfy before llama.cpp may read the file (the vocabulary's
part is in gguf_vocab.py).

Each check raises `Problem` with the problem and its fix; file_check.py adds the file's
name. The checks cover what llama.cpp (as built with llama-cpp-python 0.3.36) answers
with abort() instead of an error, found by loading malformed files in a child process:
block_count of 0 or more than 512 layers; expert counts that contradict each other
(more than 1024 experts, more used than exist, none used, groups that do not divide); a
rope scaling type other than none, linear, yarn or longrope. And, for clear messages
instead of llama.cpp's terse ones, what it reports as errors: missing architecture keys,
embedding and output tensors whose rows are not the token count, layer tensor shapes,
and tensor data past the end of the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .gguf_format import (
    INTEGER_TYPES,
    GGUFHeader,
    article,
    item_type_name,
)

MAX_LAYERS = 512  # llama.cpp's LLAMA_MAX_LAYERS
MAX_EXPERTS = 1024  # llama.cpp's LLAMA_MAX_EXPERTS (0.3.36)
ROPE_SCALING_TYPES = ("none", "linear", "yarn", "longrope")
# Architectures without attention heads (no head_count, no KV cache to speak of).
RECURRENT = frozenset(("mamba", "mamba2", "rwkv6", "rwkv6qwen2", "rwkv7", "arwkv7"))
# Architectures whose layers use llama's tensor layout (attn_q/k/v/output, ffn_*).
LLAMA_LAYOUT = frozenset(
    ("llama", "gemma", "gemma2", "gemma3", "qwen2", "qwen3", "olmo2", "granite", "mistral3")
)
_BLOCK = re.compile(r"blk\.(\d+)\.(.+)")
_DOWNLOAD_AGAIN = "the file is damaged or truncated: download it again"
_RECONVERT = (
    "the file was written wrong: download it again from another source, or convert "
    "the model again with a current llama.cpp (convert_hf_to_gguf.py)"
)

# ggml tensor types: (elements per block, bytes per block)
GGML_TYPE_SIZES = {
    0: (1, 4),  # F32
    1: (1, 2),  # F16
    2: (32, 18),  # Q4_0
    3: (32, 20),  # Q4_1
    6: (32, 22),  # Q5_0
    7: (32, 24),  # Q5_1
    8: (32, 34),  # Q8_0
    10: (256, 84),  # Q2_K
    11: (256, 110),  # Q3_K
    12: (256, 144),  # Q4_K
    13: (256, 176),  # Q5_K
    14: (256, 210),  # Q6_K
    15: (256, 292),  # Q8_K
    16: (256, 66),  # IQ2_XXS
    17: (256, 74),  # IQ2_XS
    18: (256, 98),  # IQ3_XXS
    19: (256, 50),  # IQ1_S
    20: (32, 18),  # IQ4_NL
    21: (256, 110),  # IQ3_S
    22: (256, 82),  # IQ2_S
    23: (256, 136),  # IQ4_XS
    24: (1, 1),  # I8
    25: (1, 2),  # I16
    26: (1, 4),  # I32
    27: (1, 8),  # I64
    28: (1, 8),  # F64
    29: (256, 56),  # IQ1_M
    30: (1, 2),  # BF16
    34: (256, 54),  # TQ1_0
    35: (256, 66),  # TQ2_0
    39: (32, 17),  # MXFP4
}


class Problem(Exception):
    """One thing wrong with a file: `problem` (a clause) and `hint` (the fix)."""

    def __init__(self, problem: str, hint: str = _RECONVERT):
        super().__init__(problem)
        self.problem = problem
        self.hint = hint


@dataclass(frozen=True)
class Hparams:
    """The architecture's sizes, per layer where the file gives per-layer values."""

    architecture: str
    n_layer: int
    n_embd: int
    n_ctx_train: int
    n_head: tuple[int, ...]  # per layer
    n_head_kv: tuple[int, ...]
    n_ff: tuple[int, ...] | None
    head_k: tuple[int, ...]  # key width per head, per layer
    head_v: tuple[int, ...]
    embeds_only: bool = False  # an embedding model: it pools text into a vector

    @property
    def kv_bytes_per_token(self) -> int:
        """f16 K and V cache bytes that one token of context takes, over all layers."""
        return sum(2 * kv * (k + v) for kv, k, v in zip(self.n_head_kv, self.head_k, self.head_v))


# --- tensors -----------------------------------------------------------------------


def check_tensor_data(header: GGUFHeader) -> None:
    """Each tensor's bytes lie inside the file, where the alignment says they start."""
    for tensor in header.tensors:
        if tensor.offset % header.alignment:
            raise Problem(
                f"tensor {tensor.name!r} starts at offset {tensor.offset}, which is not a "
                f"multiple of the file's alignment ({header.alignment})",
                _DOWNLOAD_AGAIN,
            )
        if tensor.ggml_type not in GGML_TYPE_SIZES:
            continue  # a type newer than this table: llama.cpp judges it
        block, block_bytes = GGML_TYPE_SIZES[tensor.ggml_type]
        if tensor.shape[0] % block:
            raise Problem(
                f"tensor {tensor.name!r} has rows of {tensor.shape[0]} values, not a "
                f"multiple of its type's block of {block}"
            )
        size = int(np.prod(tensor.shape, dtype=object)) // block * block_bytes
        end = header.data_offset + tensor.offset + size
        if end > header.file_size:
            raise Problem(
                f"it is truncated: tensor {tensor.name!r} ends at byte {end:,} but the file "
                f"has {header.file_size:,} bytes",
                "the download is incomplete or the file was truncated: download it again",
            )


# --- architecture ------------------------------------------------------------------


def read_hparams(header: GGUFHeader) -> Hparams:
    """The architecture keys llama.cpp needs, checked where it would abort on them."""
    meta = header.metadata
    arch = meta.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise Problem("it names no architecture (general.architecture)")
    n_ctx = _integer(header, f"{arch}.context_length")
    n_embd = _integer(header, f"{arch}.embedding_length", minimum=1)
    n_layer = _integer(header, f"{arch}.block_count")
    if not 1 <= n_layer <= MAX_LAYERS:
        raise Problem(f"{arch}.block_count is {n_layer} (llama.cpp takes 1 to {MAX_LAYERS})")
    _check_experts(header, arch)
    _check_rope_scaling(header, arch)
    required = arch not in RECURRENT
    n_head = _per_layer(header, f"{arch}.attention.head_count", n_layer, required=required)
    n_head = n_head or (0,) * n_layer
    n_head_kv = _per_layer(header, f"{arch}.attention.head_count_kv", n_layer) or n_head
    n_ff = _per_layer(header, f"{arch}.feed_forward_length", n_layer)
    head_k = _head_width(header, f"{arch}.attention.key_length", n_embd, n_head)
    head_v = _head_width(header, f"{arch}.attention.value_length", n_embd, n_head)
    embeds_only = (
        bool(meta.get(f"{arch}.pooling_type")) or meta.get(f"{arch}.attention.causal") is False
    )
    return Hparams(
        arch, n_layer, n_embd, n_ctx, n_head, n_head_kv, n_ff, head_k, head_v, embeds_only
    )


def _integer(header: GGUFHeader, key: str, *, minimum: int = 0, required: bool = True):
    value = header.metadata.get(key)
    if value is None and not required:
        return None
    if value is None:
        raise Problem(f"it lacks the key {key}, which llama.cpp needs")
    if header.value_types.get(key) not in INTEGER_TYPES or value < minimum:
        shown = article(item_type_name(header.value_types.get(key)))
        raise Problem(f"{key} is {value!r} ({shown}); llama.cpp needs a whole number >= {minimum}")
    return value


def _per_layer(header: GGUFHeader, key: str, n_layer: int, *, required: bool = False):
    """A key that is one number for every layer, or an array of one per layer."""
    value = header.metadata.get(key)
    if isinstance(value, tuple):
        if header.value_types[key][1] not in INTEGER_TYPES:
            raise Problem(f"{key} is {article(item_type_name(header.value_types[key]))} of numbers")
        if len(value) != n_layer:
            raise Problem(f"{key} has {_count(len(value), 'value')} for {_count(n_layer, 'layer')}")
        return tuple(int(v) for v in value)
    number = _integer(header, key, required=required)
    return None if number is None else (number,) * n_layer


def _head_width(header: GGUFHeader, key: str, n_embd: int, n_head: tuple[int, ...]):
    width = _integer(header, key, required=False)
    if width is not None:
        return (width,) * len(n_head)
    return tuple(n_embd // heads if heads else 0 for heads in n_head)


def _check_experts(header: GGUFHeader, arch: str) -> None:
    def number(name: str) -> int:
        value = header.metadata.get(f"{arch}.{name}", 0)
        if isinstance(value, tuple):
            return max((int(v) for v in value), default=0)
        return _integer(header, f"{arch}.{name}") if value else 0

    experts, used = number("expert_count"), number("expert_used_count")
    groups, groups_used = number("expert_group_count"), number("expert_group_used_count")
    if experts > MAX_EXPERTS:
        raise Problem(f"{arch}.expert_count is {experts} (llama.cpp takes at most {MAX_EXPERTS})")
    if used > experts or (experts and not used):
        raise Problem(
            f"{arch}.expert_used_count is {used} for {experts} experts "
            "(it must be between 1 and the expert count, or 0 without experts)"
        )
    if groups and (groups >= max(experts, 1) or (groups > 1 and experts % groups)):
        raise Problem(f"{arch}.expert_group_count is {groups} for {experts} experts")
    if groups > 1 and not 0 < groups_used < groups:
        raise Problem(f"{arch}.expert_group_used_count is {groups_used} for {groups} groups")


def _check_rope_scaling(header: GGUFHeader, arch: str) -> None:
    key = f"{arch}.rope.scaling.type"
    value = header.metadata.get(key)
    if value is None:
        return
    if not isinstance(value, str) or value not in ROPE_SCALING_TYPES:
        raise Problem(f"{key} is {value!r}; llama.cpp knows {', '.join(ROPE_SCALING_TYPES)}")


# --- tensor shapes -------------------------------------------------------------------


def check_shapes(header: GGUFHeader, hp: Hparams, n_vocab: int) -> None:
    """Embedding and output rows match the vocabulary; layers match the architecture."""
    if not header.tensors:
        return  # a vocabulary-only file
    tensors = {t.name: t.shape for t in header.tensors}
    embedding = tensors.get("token_embd.weight")
    if embedding is None:
        raise Problem("it has no token embedding tensor (token_embd.weight)")
    for name in ("token_embd.weight", "output.weight"):
        shape = tensors.get(name)
        if shape is not None and shape[:2] != (hp.n_embd, n_vocab):
            raise Problem(
                f"tensor {name!r} is {_shape(shape)}, but the vocabulary has {n_vocab:,} "
                f"tokens of width {hp.n_embd} ({n_vocab:,} rows of {hp.n_embd} expected)"
            )
    layers = _layer_tensors(tensors, hp.n_layer)
    if hp.architecture in LLAMA_LAYOUT:
        for layer, names in enumerate(layers):
            _check_layer(hp, layer, names)


def _layer_tensors(tensors: dict, n_layer: int) -> list[dict]:
    layers: list[dict] = [{} for _ in range(n_layer)]
    for name, shape in tensors.items():
        match = _BLOCK.fullmatch(name)
        if match is None:
            continue
        layer = int(match[1])
        if layer >= n_layer:
            layers_said = _count(n_layer, "layer")
            raise Problem(f"it has a tensor {name!r} but block_count says {layers_said}")
        layers[layer][match[2]] = shape
    empty = [i for i, names in enumerate(layers) if not names]
    if empty:
        raise Problem(
            f"block_count says {_count(n_layer, 'layer')} but layer {empty[0]} has no tensors"
        )
    return layers


def _check_layer(hp: Hparams, layer: int, shapes: dict) -> None:
    heads, kv = hp.n_head[layer], hp.n_head_kv[layer]
    q, k, v = heads * hp.head_k[layer], kv * hp.head_k[layer], kv * hp.head_v[layer]
    expected = {
        "attn_norm.weight": (hp.n_embd,),
        "ffn_norm.weight": (hp.n_embd,),
        "attn_q.weight": (hp.n_embd, q),
        "attn_k.weight": (hp.n_embd, k),
        "attn_v.weight": (hp.n_embd, v),
        "attn_output.weight": (heads * hp.head_v[layer], hp.n_embd),
    }
    if hp.n_ff is not None:
        n_ff = hp.n_ff[layer]
        expected.update(
            {
                "ffn_gate.weight": (hp.n_embd, n_ff),
                "ffn_up.weight": (hp.n_embd, n_ff),
                "ffn_down.weight": (n_ff, hp.n_embd),
            }
        )
    for name, want in expected.items():
        shape = shapes.get(name)
        if shape is not None and tuple(shape[: len(want)]) != want:
            raise Problem(
                f"tensor 'blk.{layer}.{name}' is {_shape(shape)} where the architecture keys "
                f"({hp.architecture}: {hp.n_embd} wide, {heads} heads, {kv} KV heads) say "
                f"{_shape(want)}"
            )


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _shape(shape) -> str:
    return " x ".join(str(d) for d in shape)

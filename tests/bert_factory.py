"""Tiny random sentence-transformers BERT folders, written from scratch for tests: the
files the converter reads (config.json, vocab.txt, tokenizer_config.json, modules.json,
1_Pooling/config.json, model.safetensors), with a handful of tokens and 16-wide layers.

The special tokens are not at BERT's usual ids (0, 100-103), so a conversion that
forgets to write them is caught.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

VOCAB = (
    "the cat sat on a mat dog ran far away , . ! ' caf ##e ##s ##ing cre ##me x y z"
).split() + ["[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]", "##é"]


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """The safetensors layout: header length, JSON header (space-padded to 8), raw data."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        span = [offset, offset + len(data)]
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": span}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def write_tiny_bert(
    folder: Path,
    *,
    seed: int = 0,
    lower_case: bool = True,
    pooling: str = "mean",
    extra_tensors: dict[str, np.ndarray] | None = None,
    hidden: int = 16,
    layers: int = 2,
    heads: int = 2,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ff, positions = 2 * hidden, 64
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_act": "gelu",
        "hidden_size": hidden,
        "intermediate_size": ff,
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": positions,
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "position_embedding_type": "absolute",
        "type_vocab_size": 2,
        "vocab_size": len(VOCAB),
    }
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "vocab.txt").write_text("".join(t + "\n" for t in VOCAB), encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": lower_case}))
    modules = [
        {"path": "", "type": "sentence_transformers.models.Transformer"},
        {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    modes = {f"pooling_mode_{m}_tokens": pooling == m for m in ("mean", "max")}
    modes["pooling_mode_cls_token"] = pooling == "cls"
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(modes))

    def w(*shape, scale=0.3):
        return rng.normal(0.0, scale, shape).astype(np.float32)

    tensors = {
        "embeddings.position_ids": np.arange(positions, dtype=np.float32)[None],
        "embeddings.word_embeddings.weight": w(len(VOCAB), hidden, scale=1.0),
        "embeddings.position_embeddings.weight": w(positions, hidden),
        "embeddings.token_type_embeddings.weight": w(2, hidden),
        "embeddings.LayerNorm.weight": 1.0 + w(hidden, scale=0.1),
        "embeddings.LayerNorm.bias": w(hidden, scale=0.1),
    }
    for layer in range(layers):
        p = f"encoder.layer.{layer}."
        for name, (rows, cols) in {
            "attention.self.query": (hidden, hidden),
            "attention.self.key": (hidden, hidden),
            "attention.self.value": (hidden, hidden),
            "attention.output.dense": (hidden, hidden),
            "intermediate.dense": (ff, hidden),
            "output.dense": (hidden, ff),
        }.items():
            tensors[p + name + ".weight"] = w(rows, cols)
            tensors[p + name + ".bias"] = w(rows, scale=0.1)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            tensors[p + norm + ".weight"] = 1.0 + w(hidden, scale=0.1)
            tensors[p + norm + ".bias"] = w(hidden, scale=0.1)
    tensors["pooler.dense.weight"] = w(hidden, hidden)
    tensors["pooler.dense.bias"] = w(hidden)
    tensors.update(extra_tensors or {})
    write_safetensors(folder / "model.safetensors", tensors)
    return folder

"""A sentence-transformers BERT folder -> one GGUF file that llama.cpp embeds with.

What llama.cpp's BERT graph needs, and where it comes from in the folder:

- hyperparameters (`bert.*` keys) from config.json: width, layers, heads, feed-forward
  width, positions, layer-norm epsilon; attention is not causal;
- the pooling type from modules.json -> the Pooling module's config.json (mean or CLS),
  so that llama.cpp pools one vector per text exactly as sentence-transformers does;
- the WordPiece vocabulary from vocab.txt, spelt the way llama.cpp's WordPiece
  tokenizer looks words up: a piece that starts a word gets a leading U+2581 (its
  "phantom space"), a continuation loses its "##", control tokens ([CLS], [SEP],
  [PAD], [UNK], [MASK]) stay as they are; [CLS] opens and [SEP] closes every text;
- the weights from model.safetensors, renamed to llama.cpp's tensor names
  (`tensor_name`); matrices are written as float16, the rest as float32.

llama.cpp's WordPiece lower-cases every text, so only uncased models convert (MiniLM's
tokenizer has do_lower_case = true); it does not strip accents, which callers do
before tokenizing (see `eval.embedding`). Anything else in the folder that this
converter does not know (another architecture, an unknown tensor) is refused rather
than dropped. Needs the `gguf` package (the eval extra); no torch.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from ..errors import ModelFileError
from ..files import replacing
from .safetensors_file import read_safetensors

CONVERTER_VERSION = 1  # bump when the output changes: cached conversions are then redone
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
POOLING_KEYS = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}
_EMBEDDINGS = {
    "embeddings.word_embeddings.weight": "token_embd.weight",
    "embeddings.position_embeddings.weight": "position_embd.weight",
    "embeddings.token_type_embeddings.weight": "token_types.weight",
    "embeddings.LayerNorm.weight": "token_embd_norm.weight",
    "embeddings.LayerNorm.bias": "token_embd_norm.bias",
}
_LAYER = {
    "attention.self.query": "attn_q",
    "attention.self.key": "attn_k",
    "attention.self.value": "attn_v",
    "attention.output.dense": "attn_output",
    "attention.output.LayerNorm": "attn_output_norm",
    "intermediate.dense": "ffn_up",
    "output.dense": "ffn_down",
    "output.LayerNorm": "layer_output_norm",
}
_LAYER_NAME = re.compile(r"encoder\.layer\.(\d+)\.(.+)\.(weight|bias)")
_SKIPPED = re.compile(r"embeddings\.position_ids|pooler\..*")  # unused by a sentence embedder


def tensor_name(hf_name: str) -> str | None:
    """llama.cpp's name for a BERT tensor; None for one a sentence embedder does not use.

    Raises ModelFileError for a tensor this converter does not know.
    """
    name = hf_name.removeprefix("bert.")
    if name in _EMBEDDINGS:
        return _EMBEDDINGS[name]
    if _SKIPPED.fullmatch(name):
        return None
    found = _LAYER_NAME.fullmatch(name)
    if found and found[2] in _LAYER:
        return f"blk.{found[1]}.{_LAYER[found[2]]}.{found[3]}"
    raise ModelFileError(
        f"The model has a tensor {hf_name!r} that a BERT sentence embedder does not have.",
        "convert it with llama.cpp's convert_hf_to_gguf.py, or use a published GGUF",
    )


def phantom_spelling(token: str) -> str:
    """A vocab.txt entry as llama.cpp's WordPiece tokenizer stores it."""
    if token in SPECIAL_TOKENS:
        return token
    if token.startswith("##"):
        return token[2:]
    return "\u2581" + token


def convert_sentence_transformer(
    folder: str | os.PathLike, target: str | os.PathLike, *, name: str
) -> Path:
    """Write the GGUF of the sentence-transformers BERT model in `folder` to `target`.

    Written whole or not at all (a temporary file beside the target, then a rename).
    Raises ModelFileError naming what the folder lacks or holds that cannot convert.
    """
    import gguf

    folder, target = Path(folder), Path(target)
    config = _read_json(folder / "config.json")
    _check_architecture(folder, config, _read_json(folder / "tokenizer_config.json", {}))
    vocab = _read_vocab(folder / "vocab.txt", config)
    pooling = read_pooling(folder)
    tensors = read_safetensors(folder / "model.safetensors")
    with replacing(target, suffix=".gguf") as temporary:
        writer = gguf.GGUFWriter(str(temporary), "bert")
        _add_hparams(writer, gguf, config, pooling, name)
        _add_vocab(writer, gguf, vocab)
        for hf_name, array in tensors.items():
            gguf_name = tensor_name(hf_name)
            if gguf_name is not None:
                writer.add_tensor(gguf_name, _stored(gguf_name, array))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return target


def read_pooling(folder: Path) -> str:
    """ "mean" or "cls": the pooling of the folder's sentence-transformers Pooling module."""
    modules = _read_json(folder / "modules.json")
    for module in modules:
        if module.get("type", "").endswith("models.Pooling"):
            config = _read_json(folder / module.get("path", "") / "config.json")
            chosen = [mode for key, mode in POOLING_KEYS.items() if config.get(key)]
            others = [k for k, v in config.items() if k.startswith("pooling_mode") and v]
            if len(chosen) == 1 and len(others) == 1:
                return chosen[0]
            raise _unsupported(folder, f"its pooling ({', '.join(others) or 'none'})")
    raise _unsupported(folder, "modules.json names no Pooling module")


def _check_architecture(folder: Path, config: dict, tokenizer: dict) -> None:
    checks = (
        (config.get("model_type") == "bert", f"model_type {config.get('model_type')!r}"),
        (config.get("hidden_act") == "gelu", f"activation {config.get('hidden_act')!r}"),
        (
            config.get("position_embedding_type", "absolute") == "absolute",
            f"position embeddings {config.get('position_embedding_type')!r}",
        ),
        (tokenizer.get("do_lower_case", True), "a cased tokenizer (llama.cpp lower-cases)"),
    )
    for ok, what in checks:
        if not ok:
            raise _unsupported(folder, what)


def _read_vocab(path: Path, config: dict) -> list[str]:
    try:
        tokens = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as error:
        raise _unsupported(path.parent, f"its vocab.txt cannot be read ({error})") from None
    if tokens and tokens[-1] == "":
        tokens.pop()  # the file's final newline
    if len(tokens) != config.get("vocab_size") or len(set(tokens)) != len(tokens):
        raise _unsupported(path.parent, f"vocab.txt has {len(tokens)} tokens (or duplicates)")
    missing = [t for t in SPECIAL_TOKENS if t not in tokens]
    if missing:
        raise _unsupported(path.parent, f"vocab.txt lacks {', '.join(missing)}")
    return tokens


def _add_hparams(writer, gguf, config: dict, pooling: str, name: str) -> None:
    writer.add_name(name)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_layer_norm_eps(config["layer_norm_eps"])
    writer.add_causal_attention(False)
    writer.add_pooling_type(gguf.PoolingType.MEAN if pooling == "mean" else gguf.PoolingType.CLS)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)


def _add_vocab(writer, gguf, vocab: list[str]) -> None:
    normal, control = gguf.TokenType.NORMAL, gguf.TokenType.CONTROL
    writer.add_tokenizer_model("bert")
    writer.add_token_type_count(2)
    writer.add_token_list([phantom_spelling(t) for t in vocab])
    writer.add_token_types([control if t in SPECIAL_TOKENS else normal for t in vocab])
    ids = {t: vocab.index(t) for t in SPECIAL_TOKENS}
    writer.add_bos_token_id(ids["[CLS]"])  # llama.cpp opens a text with its BOS: [CLS]
    writer.add_sep_token_id(ids["[SEP]"])
    writer.add_unk_token_id(ids["[UNK]"])
    writer.add_pad_token_id(ids["[PAD]"])
    writer.add_mask_token_id(ids["[MASK]"])
    writer.add_add_bos_token(True)
    writer.add_add_sep_token(True)
    writer.add_add_eos_token(False)


def _stored(name: str, array: np.ndarray) -> np.ndarray:
    """float16 for matrices (halves the file), float32 for vectors and for the token-type
    rows, which llama.cpp adds to float32 activations as they are."""
    half = array.ndim == 2 and name != "token_types.weight"
    return np.asarray(array, dtype=np.float16 if half else np.float32)


def _read_json(path: Path, default=None):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if default is not None:
            return default
        raise _unsupported(path.parent, f"{path.name} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _unsupported(path.parent, f"{path.name} cannot be read ({error})") from None


def _unsupported(folder: Path, what: str) -> ModelFileError:
    return ModelFileError(
        f"Cannot convert the sentence embedder in {folder}: {what}.",
        "use a published GGUF of the model instead (--embedding FILE.gguf)",
    )

"""The vocabulary checks of a GGUF header (see gguf_checks.py for the rest).

llama.cpp aborts on a vocabulary with two equal token texts (even in a vocabulary-only
load), on any tokenization with a tokenizer of type "none", and on text with a
character that a SentencePiece vocabulary without byte tokens cannot spell. Token
scores and types that are shorter than the token list are errors there; here all three
must have one entry per token.
"""

from __future__ import annotations

import numpy as np

from .gguf_checks import Problem
from .gguf_format import ARRAY, STRING, GGUFHeader, article, item_type_name
from .gguf_strings import find_duplicate

NO_VOCABULARY = ("none", "no_vocab")
# Tokenizers checked here in full; others also get a vocabulary-only load in a child.
CHECKED_TOKENIZERS = ("llama", "gpt2")


def check_vocabulary(header: GGUFHeader) -> tuple[str, int]:
    """The tokenizer's name and token count, once its arrays agree and its texts differ."""
    meta = header.metadata
    model = meta.get("tokenizer.ggml.model")
    if not isinstance(model, str):
        raise Problem("it has no tokenizer (tokenizer.ggml.model)")
    if model in NO_VOCABULARY:
        raise Problem(
            f"it has no vocabulary (tokenizer.ggml.model is {model!r}), so it cannot read text",
            "use a text model's GGUF file: this one is a part (an encoder or projector) "
            "of another model",
        )
    tokens = meta.get("tokenizer.ggml.tokens")
    if header.value_types.get("tokenizer.ggml.tokens") != (ARRAY, STRING) or not len(tokens):
        raise Problem("it has no token list (tokenizer.ggml.tokens, an array of strings)")
    n_tokens = len(tokens)
    _check_same_length(header, "tokenizer.ggml.scores", n_tokens, (6, 5))
    _check_same_length(header, "tokenizer.ggml.token_type", n_tokens, (5,))
    _check_unique(header, tokens)
    if model == "llama":
        _check_byte_tokens(header, tokens)
    if model == "gpt2" and header.value_types.get("tokenizer.ggml.merges") != (ARRAY, STRING):
        raise Problem("its BPE tokenizer has no merges (tokenizer.ggml.merges)")
    return model, n_tokens


def _check_same_length(header: GGUFHeader, key: str, n_tokens: int, item_types) -> None:
    if key not in header.metadata:
        return
    value_type = header.value_types[key]
    if not isinstance(value_type, tuple) or value_type[1] not in item_types:
        wanted = " or ".join(item_type_name((ARRAY, t)) for t in item_types)
        found = article(item_type_name(value_type))
        raise Problem(f"{key} is {found}; llama.cpp needs {article(wanted)}")
    count = len(header.metadata[key]) if isinstance(header.metadata[key], tuple) else None
    count = header.metadata[key].count if count is None else count
    if count != n_tokens:
        raise Problem(f"{key} has {count:,} entries for {n_tokens:,} tokens")


def _check_unique(header: GGUFHeader, tokens) -> None:
    if isinstance(tokens, tuple):
        seen: dict[str, int] = {}
        for index, text in enumerate(tokens):
            if text in seen:
                _duplicate(seen[text], index, text)
            seen[text] = index
        return
    found = find_duplicate(header.raw, tokens)
    if found:
        first, second = found
        _duplicate(first, second, tokens.item(header.raw, first).decode("utf-8", "replace"))


def _duplicate(first: int, second: int, text: str) -> None:
    raise Problem(
        f"its vocabulary has the token {text!r} twice (ids {first} and {second}); "
        "llama.cpp would abort on it"
    )


def _byte_values(header: GGUFHeader, tokens) -> set[int]:
    """The bytes b for which the vocabulary has a token "<0xNN>" or the single byte b."""
    if isinstance(tokens, tuple):
        found = {text.encode("utf-8") for text in tokens}
        return {b for b in range(256) if b"<0x%02X>" % b in found or bytes([b]) in found}
    data = np.frombuffer(header.raw, dtype=np.uint8)
    singles = set(data[tokens.offsets[tokens.lengths == 1]].tolist())
    starts = tokens.offsets[tokens.lengths == 6]
    six = data[starts[:, None] + np.arange(6)]  # (m, 6): every 6-byte token's bytes
    named = six[(six[:, 0] == ord("<")) & (six[:, 1] == ord("0")) & (six[:, 2] == ord("x"))]
    texts = {bytes(row) for row in named[named[:, 5] == ord(">")]}
    return singles | {b for b in range(256) if b"<0x%02X>" % b in texts}


def _check_byte_tokens(header: GGUFHeader, tokens) -> None:
    """SentencePiece falls back to <0xNN> tokens for characters it has no token for."""
    present = _byte_values(header, tokens)
    missing = [b for b in range(256) if b not in present]
    if missing:
        raise Problem(
            f"its SentencePiece vocabulary lacks {len(missing)} of the 256 byte tokens "
            f"(<0x{missing[0]:02X}> first); text with an unusual character would crash "
            "llama.cpp"
        )

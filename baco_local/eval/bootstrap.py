"""Bootstrap over prompts: resample the prompts with replacement, recompute, repeat.

Pure numpy. The prompt is the unit that is resampled: a prompt's k answers share its
topic, so they are not independent draws, while different prompts are. Every point (a
method at one setting) answered the same prompts, so one resample applies the same
prompt counts to every point: differences between points are paired.

An interval is the percentile interval of the resampled figures: for level 0.95, their
2.5th and 97.5th percentiles. A difference is called **real** when its interval
excludes 0.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BootstrapSettings:
    """resamples: B, 0 for no intervals; seed: of the resampling; level: of each interval."""

    resamples: int = 1000
    seed: int = 0
    level: float = 0.95

    def __post_init__(self):
        if self.resamples < 0 or self.resamples == 1:
            raise ValueError(
                f"resamples {self.resamples}: use 0 (no intervals) or at least 2 (1000 is usual)"
            )
        if not 0 < self.level < 1:
            raise ValueError(f"level {self.level} is not in (0, 1); use e.g. 0.95")


def resample_weights(n_prompts: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n_prompts) int64: how often each prompt is drawn in each resample
    (n_prompts draws with replacement; every row sums to n_prompts)."""
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, n_prompts, size=(resamples, n_prompts))
    weights = np.zeros((resamples, n_prompts), dtype=np.int64)
    np.add.at(weights, (np.arange(resamples)[:, None], drawn), 1)
    return weights


def weighted_means(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-prompt values (P, n, M) of P points, n prompts, M metrics, and prompt weights
    (B, n) -> (B, P, M) means; nan values are left out, nan where none is left."""
    values = np.asarray(values, dtype=np.float64)
    present = ~np.isnan(values)
    weights = np.asarray(weights, dtype=np.float64)
    sums = np.einsum("bn,pnm->bpm", weights, np.where(present, values, 0.0))
    counts = np.einsum("bn,pnm->bpm", weights, present.astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.where(counts > 0, counts, 1.0), np.nan)


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> np.ndarray:
    """(B, ...) resampled figures -> (2, ...): the low and high percentile per figure
    (nan ignored; nan where every resample is nan)."""
    tail = 100 * (1 - level) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanpercentile(np.asarray(samples, dtype=np.float64), [tail, 100 - tail], axis=0)


def is_real(low: float, high: float) -> bool:
    """A difference is real when its interval excludes 0 (a nan bound: not shown real)."""
    return bool((low > 0 and high > 0) or (low < 0 and high < 0))


def interval_list(low, high) -> list[float | None]:
    """[low, high] for JSON (nan becomes None)."""
    return [None if np.isnan(x) else float(x) for x in (low, high)]

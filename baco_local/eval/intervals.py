"""Every figure of a run with its bootstrap interval over prompts, and which differences
between methods are real.

From the records: per-prompt metric values (P points x n prompts x M metrics), then B
resamples of the prompts (bootstrap.py), each measured exactly as the data is
(aggregate.plane_arrays): the metric table, Coverage under both scalings (fixed ranges
and the paper's min-max), Dominance, and the joint improvement. A figure's interval is
the 95% percentile interval of its resamples; a difference between two methods (or two
points) is resampled paired, on the same prompts, and is **real** when its interval
excludes 0.

Fixed-range axes of the open metrics (bigram entropy, compression, log-likelihood) are
the observed range widened on each side by the median width of the points' intervals
for that metric, decided once from the data and kept for every resample.
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np

from .aggregate import averages, plane_arrays, record_metrics, summarise
from .bootstrap import (
    BootstrapSettings,
    interval_list,
    is_real,
    percentile_interval,
    resample_weights,
    weighted_means,
)
from .coverage import SCALES, fixed_axes
from .metrics import ALL_METRICS

KINDS = ("overall", "lexical", "semantic")


def prompt_values(records: list[dict], threshold: float, labels: list[str]):
    """(values (P, n, M), prompts, names): every metric of every point on every prompt,
    nan where a point has no record for a prompt or the metric could not be measured."""
    rows = {}
    for record in records:
        unit = record["unit"]
        rows[(unit["point"], unit["task"], unit["prompt_id"])] = record_metrics(record, threshold)
    prompts = sorted({(task, pid) for _, task, pid in rows})
    names = list(next(iter(rows.values()))) if rows else list(ALL_METRICS)
    values = np.full((len(labels), len(prompts), len(names)), np.nan)
    for (label, task, pid), metrics in rows.items():
        if label in labels:
            p, n = labels.index(label), prompts.index((task, pid))
            values[p, n] = [math.nan if metrics[m] is None else metrics[m] for m in names]
    return values, prompts, names


def analyse(
    records: list[dict],
    methods: dict[str, list[str]],
    *,
    k: int,
    threshold: float,
    settings: BootstrapSettings,
) -> dict:
    """Coverage under both scalings, Dominance, joint improvements, their intervals and
    the verdicts on differences. methods: {method: [point labels]}, each with records."""
    labels = [lb for group in methods.values() for lb in group]
    values, prompts, names = prompt_values(records, threshold, labels)
    table = _table(weighted_means(values, np.ones((1, len(prompts))))[0], labels, names)
    boot = None
    if settings.resamples and prompts:
        weights = resample_weights(len(prompts), settings.resamples, settings.seed)
        boot = weighted_means(values, weights)  # (B, P, M)
    noise = _noise(_noise_resamples(values, boot, settings), names, BootstrapSettings.level)
    axes = {
        name: fixed_axes(name, k, np.array([table[lb][name] for lb in labels]), noise[name])
        for name in ALL_METRICS
    }
    out = {"prompts": len(prompts), "axes": {n: list(a) for n, a in axes.items()}, "scales": {}}
    for scale in SCALES:
        chosen_axes = axes if scale == "fixed" else None
        summary = summarise(table, methods, chosen_axes)
        out["scales"][scale] = {
            "coverage": summary["coverage"],
            "dominance": summary["dominance"],
            "frontier": summary["planes_frontier"],
            "joint_improvement": summary["joint_improvement"],
        }
        if boot is not None:
            arrays = plane_arrays(boot, labels, names, methods, chosen_axes)
            _add_intervals(out["scales"][scale], arrays, methods, settings.level)
    if boot is not None:
        out["metric_intervals"] = _metric_intervals(boot, labels, names, settings.level)
        out["point_differences"] = point_differences(boot, table, labels, names, methods, settings)
    return out


def _table(means: np.ndarray, labels, names) -> dict:
    return {lb: dict(zip(names, means[p].tolist())) for p, lb in enumerate(labels)}


def _noise_resamples(values, boot, settings: BootstrapSettings):
    """The resamples an open metric's axis margin is measured on: always the default
    number (1000) at the run's seed, so that the axes, and every point value on them, do
    not depend on --bootstrap (with --bootstrap 0 the margin used to be 0)."""
    if values.shape[1] == 0:
        return None
    if boot is not None and settings.resamples == BootstrapSettings.resamples:
        return boot  # the same draws
    weights = resample_weights(values.shape[1], BootstrapSettings.resamples, settings.seed)
    return weighted_means(values, weights)


def _noise(boot, names, level) -> dict[str, float]:
    """Per metric, the median width of the points' intervals (0 without resamples)."""
    if boot is None:
        return dict.fromkeys(names, 0.0)
    low, high = percentile_interval(boot, level)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        widths = np.nanmedian(high - low, axis=0)
    return {n: 0.0 if np.isnan(w) else float(w) for n, w in zip(names, widths)}


def _metric_intervals(boot, labels, names, level) -> dict:
    low, high = percentile_interval(boot, level)
    return {
        lb: {n: interval_list(low[p, i], high[p, i]) for i, n in enumerate(names)}
        for p, lb in enumerate(labels)
    }


def _add_intervals(scale_out: dict, arrays: dict, methods, level: float) -> None:
    """Intervals of every Coverage and Dominance figure, method differences and the joint
    improvement's, from the resampled plane arrays."""
    names = list(methods)
    for measure in ("coverage", "dominance"):
        by_plane = {p: a[measure] for p, a in arrays.items()}
        means = averages(by_plane)
        intervals = {kind: _per_method(v, names, level) for kind, v in means.items()}
        intervals["planes"] = {p: _per_method(v, names, level) for p, v in by_plane.items()}
        scale_out[f"{measure}_intervals"] = intervals
        point = scale_out[measure]
        scale_out[f"{measure}_differences"] = {
            kind: method_differences(point[kind], v, names, level) for kind, v in means.items()
        }
    ji = scale_out["joint_improvement"]
    if ji:
        means = averages({p: a["coverage"] for p, a in arrays.items()})["overall"]
        _add_joint_interval(ji, means, names, level)


def _per_method(samples, names, level) -> dict:
    if samples is None:
        return dict.fromkeys(names)
    low, high = percentile_interval(samples, level)
    return {m: interval_list(low[i], high[i]) for i, m in enumerate(names)}


def method_differences(point: dict, samples, names, level) -> list[dict]:
    """Every pair of methods (a before b): a - b, its paired interval and verdict."""
    rows = []
    if samples is None:
        return rows
    for (i, a), (j, b) in itertools.combinations(enumerate(names), 2):
        if point.get(a) is None or point.get(b) is None:
            continue
        low, high = percentile_interval(samples[:, i] - samples[:, j], level)
        rows.append(
            {
                "a": a,
                "b": b,
                "difference": point[a] - point[b],
                "interval": interval_list(low, high),
                "real": is_real(low, high),
            }
        )
    return rows


def _add_joint_interval(ji: dict, coverage_samples, names, level) -> None:
    """The joint improvement's interval, with its router and baseline kept as chosen on
    the data: relative gain and coverage difference, and whether the difference is real."""
    r = coverage_samples[:, names.index(ji["router"])]
    b = coverage_samples[:, names.index(ji["baseline"])]
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = np.where(b > 0, r / np.where(b > 0, b, 1.0) - 1, np.nan)
    low, high = percentile_interval(r - b, level)
    ji["difference"] = ji["router_coverage"] - ji["baseline_coverage"]
    ji["difference_interval"] = interval_list(low, high)
    ji["relative_interval"] = interval_list(*percentile_interval(relative, level))
    ji["real"] = is_real(low, high)


def reference_point(methods: dict[str, list[str]]) -> str:
    """The point others are compared with metric by metric: the aligned model alone
    (its first setting) when it was run, else the first baseline's, else the first."""
    from .methods import is_router_method

    if methods.get("aligned"):
        return methods["aligned"][0]
    for method, labels in methods.items():
        if not is_router_method(method) and labels:
            return labels[0]
    return next(iter(methods.values()))[0]


def point_differences(boot, table, labels, names, methods, settings) -> dict:
    """Every other point minus the reference point, metric by metric, paired."""
    reference = reference_point(methods)
    r = labels.index(reference)
    rows = {}
    for p, label in enumerate(labels):
        if label == reference:
            continue
        low, high = percentile_interval(boot[:, p] - boot[:, r], settings.level)
        rows[label] = {
            n: {
                "difference": table[label][n] - table[reference][n],
                "interval": interval_list(low[i], high[i]),
                "real": is_real(low[i], high[i]),
            }
            for i, n in enumerate(names)
        }
    return {"reference": reference, "points": rows}

"""From records to numbers: the metric table, Coverage, Dominance, joint improvement.

Definitions (pure numpy; see the README's `baco eval` section for how to read them):

- **Metric table.** For each point (a method at one setting) and metric, the mean over
  prompts of the per-prompt value (diversity over the k answers, quality averaged over
  them). nan values (too little text to measure) are left out of means.
- **Plane.** One diversity metric D paired with one quality metric Q: 11 x 2 = 22
  planes. Each point is placed at (d, q), both oriented so that larger is better (a
  lower-is-better metric is negated), then scaled to [0, 1] per axis, one of two ways
  (coverage.py): by a fixed range per metric (the default: the judge's 1-5, shares and
  distances 0-1, counts 1..k; an open metric by its observed range widened on each side
  by its bootstrap noise), x' = (x - low) / (high - low) clipped to [0, 1]; or, as in the
  paper, min-max over the points of every method pooled: x' = (x - min) / (max - min)
  (an axis where all points are equal maps to 1).
- **Coverage** of method m in a plane: the area of the region its points dominate,
  above the worst corner (0, 0) of the normalised plane, i.e. the area under the
  staircase of its trade-off curve as its dial sweeps:
  Cov(m) = area( union over points p of m of [0, d'_p] x [0, q'_p] ), in [0, 1].
  A method with one point covers d' * q'; sweeping a dial covers more when the points
  trace a frontier that bulges toward (1, 1).
- **Dominance** of m in a plane: its share of the pooled Pareto frontier,
  Dom(m) = |F intersect P_m| / |F|, F the points no other point dominates (at least as
  good on both axes and better on one). Shares sum to 1 over methods.
- **Overall, lexical, semantic.** The mean of a method's Coverage (or Dominance) over
  all planes, over the 14 planes with a lexical D, and over the 8 with a semantic D
  (also by quality metric: judge_planes and loglik_planes, 11 each).
- **Joint improvement.** With R the router method of highest overall Coverage and B the
  baseline of highest overall Coverage: JI = Cov(R) / Cov(B) - 1, the relative gain in
  area of the diversity-quality trade-off (0.25 = a quarter more area).

Every function here works on the data as it is; `plane_arrays` and `averages` also take
B resamples at once, which is how intervals.py bootstraps every figure.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict

import numpy as np

from .coverage import (
    coverage_areas,
    dominance_shares,
    frontier_masks,
    oriented,
    scale_fixed,
    scale_minmax,
)
from .methods import is_router_method
from .metrics import ALL_METRICS, DIVERSITY_METRICS, LEXICAL, QUALITY_METRICS, diversity_metrics
from .runner import decode_vectors

EXTRA_COLUMNS = ("base_fraction", "tokens")


def record_metrics(record: dict, threshold: float) -> dict[str, float]:
    """Every metric of one record (one prompt, one point)."""
    answers = record["answers"]
    texts = [a["text"] for a in answers]
    values = diversity_metrics(texts, decode_vectors(record["embeddings"]), threshold)
    for name in ("judge", "loglik", "base_fraction", "tokens"):
        values[name] = _nanmean([a.get(name) for a in answers])
    return values


def metric_table(records: list[dict], threshold: float) -> dict[str, dict[str, float]]:
    """{point label: {metric: mean over that point's prompts}}, in first-seen order."""
    per_point: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        per_point[record["unit"]["point"]].append(record_metrics(record, threshold))
    return {
        label: {name: _nanmean([r[name] for r in rows]) for name in rows[0]}
        for label, rows in per_point.items()
    }


def planes() -> list[tuple[str, str]]:
    return [(d.name, q.name) for d in DIVERSITY_METRICS for q in QUALITY_METRICS]


def plane_name(diversity: str, quality: str) -> str:
    return f"{diversity}/{quality}"


def normalise(points: np.ndarray) -> np.ndarray:
    """Min-max per column to [0, 1]; a constant column becomes 1. Returns a new array."""
    return scale_minmax(np.asarray(points, dtype=np.float64)[None])[0]


def coverage_area(points: np.ndarray) -> float:
    """Area of the union of rectangles [0, x] x [0, y] over points (n, 2), x, y >= 0."""
    points = np.asarray(points, dtype=np.float64).reshape(1, -1, 2)
    return float(coverage_areas(points, np.ones(points.shape[1], dtype=bool))[0])


def pareto_mask(points: np.ndarray) -> np.ndarray:
    """Boolean (n,): True where no other point is >= on both axes and > on one."""
    return frontier_masks(np.asarray(points, dtype=np.float64)[None])[0]


def plane_arrays(means, labels, names, methods, axes=None, chosen=None) -> dict:
    """Coverage, Dominance and frontier of every plane, for B resamples at once.

    means: (B, P, M) metric means of the points `labels` (P) for the metrics `names`
    (M); methods: {method: [point labels]}; axes: {metric: (low, high)} oriented fixed
    axes (coverage.fixed_axes), or None for the paper's min-max scaling; chosen: planes
    (diversity, quality) to compute, default all. A plane with no present point in any
    resample is left out. Returns {plane name: {"coverage": (B, methods), "dominance":
    (B, methods), "frontier": (B, P) bool}}, methods in the order given.
    """
    means = np.asarray(means, dtype=np.float64)
    members = [np.array([lb in group for lb in labels]) for group in methods.values()]
    out = {}
    for d, q in chosen or planes():
        raw = oriented(means[:, :, [names.index(d), names.index(q)]], (d, q))
        if np.isnan(raw).any(axis=-1).all():
            continue
        if axes is None:
            scaled = scale_minmax(raw)
        else:
            scaled = scale_fixed(raw, *zip(axes[d], axes[q]))
        frontier = frontier_masks(raw)
        out[plane_name(d, q)] = {
            "coverage": np.stack([coverage_areas(scaled, m) for m in members], axis=1),
            "dominance": np.stack([dominance_shares(frontier, m) for m in members], axis=1),
            "frontier": frontier,
        }
    return out


def table_array(table, labels, names) -> np.ndarray:
    """A metric table as a (1, P, M) array (None becomes nan)."""
    rows = [[_as_float(table[lb].get(n)) for n in names] for lb in labels]
    return np.array(rows, dtype=np.float64).reshape(1, len(labels), len(names))


def plane_summary(table, methods: dict[str, list[str]], diversity: str, quality: str, axes=None):
    """Coverage and Dominance of each method in one plane, and the frontier's labels.

    methods: {method: [point labels]}. Points with a nan coordinate are left out; None
    when no point is left. axes: as in plane_arrays (None: min-max).
    """
    labels, names = [lb for group in methods.values() for lb in group], list(ALL_METRICS)
    arrays = plane_arrays(
        table_array(table, labels, names), labels, names, methods, axes, [(diversity, quality)]
    )
    if not arrays:
        return None
    return _plane_dict(next(iter(arrays.values())), labels, methods)


def _plane_dict(arrays, labels, methods) -> dict:
    return {
        "coverage": dict(zip(methods, arrays["coverage"][0].tolist())),
        "dominance": dict(zip(methods, arrays["dominance"][0].tolist())),
        "frontier": [lb for lb, on in zip(labels, arrays["frontier"][0]) if on],
    }


def averages(by_plane: dict[str, np.ndarray]) -> dict[str, np.ndarray | None]:
    """{plane: (B, methods)} -> (B, methods) nan-means over groups of planes, or None
    when a group has none: "overall", "lexical", "semantic" (by the diversity metric),
    and "judge_planes", "loglik_planes" (by the quality metric)."""
    groups = {
        "overall": lambda p: True,
        "lexical": lambda p: _kind(p) == LEXICAL,
        "semantic": lambda p: _kind(p) != LEXICAL,
    }
    for q in QUALITY_METRICS:
        groups[f"{q.name}_planes"] = lambda p, q=q.name: p.split("/")[1] == q
    out = {}
    for group, chosen in groups.items():
        selected = [values for plane, values in by_plane.items() if chosen(plane)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out[group] = np.nanmean(np.stack(selected), axis=0) if selected else None
    return out


def summarise(table, methods: dict[str, list[str]], axes=None) -> dict:
    """Coverage and Dominance per plane and averaged, and the joint improvement.
    axes: oriented fixed axes per metric (coverage.fixed_axes), None for min-max."""
    labels, names = [lb for group in methods.values() for lb in group], list(ALL_METRICS)
    arrays = plane_arrays(table_array(table, labels, names), labels, names, methods, axes)
    per_plane = {p: _plane_dict(a, labels, methods) for p, a in arrays.items()}
    out = {"planes_frontier": {p: s["frontier"] for p, s in per_plane.items()}}
    for measure in ("coverage", "dominance"):
        means = averages({p: a[measure] for p, a in arrays.items()})
        out[measure] = {
            kind: (
                dict(zip(methods, values[0].tolist()))
                if values is not None
                else {m: None for m in methods}
            )
            for kind, values in means.items()
        }
        out[measure]["planes"] = {p: s[measure] for p, s in per_plane.items()}
    out["joint_improvement"] = joint_improvement(out["coverage"]["overall"], out["dominance"])
    return out


def joint_improvement(coverage: dict[str, float], dominance: dict | None = None) -> dict | None:
    """Best router vs strongest baseline by overall Coverage (see the module docstring)."""
    routers = {m: v for m, v in coverage.items() if is_router_method(m) and _number(v)}
    baselines = {m: v for m, v in coverage.items() if not is_router_method(m) and _number(v)}
    if not routers or not baselines:
        return None
    router = max(routers, key=routers.get)
    baseline = max(baselines, key=baselines.get)
    relative = routers[router] / baselines[baseline] - 1 if baselines[baseline] > 0 else None
    result = {
        "router": router,
        "baseline": baseline,
        "router_coverage": routers[router],
        "baseline_coverage": baselines[baseline],
        "relative": relative,
    }
    if dominance is not None:
        overall = dominance["overall"]
        result["router_dominance"] = overall.get(router)
        result["baseline_dominance"] = overall.get(baseline)
    return result


def _kind(plane: str) -> str:
    return ALL_METRICS[plane.split("/")[0]].kind


def _number(x) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def _as_float(value) -> float:
    return math.nan if value is None else float(value)


def _nanmean(values) -> float:
    numbers = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return float(np.mean(numbers)) if numbers else math.nan

"""From records to numbers: the metric table, Coverage, Dominance, joint improvement.

Definitions (pure numpy; see the README's `baco eval` section for how to read them):

- **Metric table.** For each point (a method at one setting) and metric, the mean over
  prompts of the per-prompt value (diversity over the k answers, quality averaged over
  them). nan values (too little text to measure) are left out of means.
- **Plane.** One diversity metric D paired with one quality metric Q: 11 x 2 = 22
  planes. Each point is placed at (d, q), both oriented so that larger is better (a
  lower-is-better metric is negated), then min-max normalised per axis over the points
  of every method pooled: x' = (x - min) / (max - min), in [0, 1] (an axis where all
  points are equal maps to 1).
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
  all planes, over the 14 planes with a lexical D, and over the 8 with a semantic D.
- **Joint improvement.** With R the router method of highest overall Coverage and B the
  baseline of highest overall Coverage: JI = Cov(R) / Cov(B) - 1, the relative gain in
  area of the diversity-quality trade-off (0.25 = a quarter more area).
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

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


def oriented_points(table, labels, diversity: str, quality: str) -> np.ndarray:
    """(n, 2) array of (d, q) per label, both oriented so that larger is better."""
    signs = [1.0 if ALL_METRICS[m].higher_is_better else -1.0 for m in (diversity, quality)]
    return np.array(
        [[signs[0] * table[lb][diversity], signs[1] * table[lb][quality]] for lb in labels],
        dtype=np.float64,
    ).reshape(-1, 2)


def normalise(points: np.ndarray) -> np.ndarray:
    """Min-max per column to [0, 1]; a constant column becomes 1. Returns a new array."""
    low, high = points.min(axis=0), points.max(axis=0)
    span = high - low
    out = np.ones_like(points, dtype=np.float64)
    varying = span > 0
    out[:, varying] = (points[:, varying] - low[varying]) / span[varying]
    return out


def coverage_area(points: np.ndarray) -> float:
    """Area of the union of rectangles [0, x] x [0, y] over points (n, 2), x, y >= 0."""
    area, height = 0.0, 0.0
    for x, y in sorted(map(tuple, points), reverse=True):  # widest rectangle first
        if y > height:
            area += x * (y - height)
            height = y
    return float(area)


def pareto_mask(points: np.ndarray) -> np.ndarray:
    """Boolean (n,): True where no other point is >= on both axes and > on one."""
    n = len(points)
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        at_least = np.all(points >= points[i], axis=1)
        better = np.any(points > points[i], axis=1)
        mask[i] = not np.any(at_least & better)
    return mask


def plane_summary(table, methods: dict[str, list[str]], diversity: str, quality: str):
    """Coverage and Dominance of each method in one plane, and the frontier's labels.

    methods: {method: [point labels]}. Points with a nan coordinate are left out; None
    when no point is left.
    """
    labels = [lb for group in methods.values() for lb in group]
    raw = oriented_points(table, labels, diversity, quality)
    keep = ~np.isnan(raw).any(axis=1)
    if not keep.any():
        return None
    labels = [lb for lb, k in zip(labels, keep) if k]
    scaled = dict(zip(labels, normalise(raw[keep])))
    frontier = [lb for lb, on in zip(labels, pareto_mask(raw[keep])) if on]
    coverage, dominance = {}, {}
    for method, group in methods.items():
        mine = [scaled[lb] for lb in group if lb in scaled]
        coverage[method] = coverage_area(np.array(mine)) if mine else 0.0
        dominance[method] = sum(lb in group for lb in frontier) / len(frontier)
    return {"coverage": coverage, "dominance": dominance, "frontier": frontier}


def summarise(table, methods: dict[str, list[str]]) -> dict:
    """Coverage and Dominance per plane and averaged, and the joint improvement."""
    per_plane = {}
    for d, q in planes():
        summary = plane_summary(table, methods, d, q)
        if summary is not None:
            per_plane[plane_name(d, q)] = summary
    out = {"planes_frontier": {p: s["frontier"] for p, s in per_plane.items()}}
    for measure in ("coverage", "dominance"):
        by_plane = {p: s[measure] for p, s in per_plane.items()}
        out[measure] = {
            "overall": _average(by_plane, methods, lambda p: True),
            "lexical": _average(by_plane, methods, lambda p: _kind(p) == LEXICAL),
            "semantic": _average(by_plane, methods, lambda p: _kind(p) != LEXICAL),
            "planes": by_plane,
        }
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


def _average(by_plane, methods, chosen) -> dict[str, float | None]:
    selected = [values for plane, values in by_plane.items() if chosen(plane)]
    if not selected:
        return {m: None for m in methods}
    return {m: float(np.mean([values[m] for values in selected])) for m in methods}


def _number(x) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def _nanmean(values) -> float:
    numbers = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return float(np.mean(numbers)) if numbers else math.nan

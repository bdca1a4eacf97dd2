"""Coverage, Dominance and the joint improvement on planes worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from baco_local.eval import aggregate
from baco_local.eval.metrics import ALL_METRICS, DIVERSITY_METRICS
from baco_local.eval.runner import encode_vectors


def test_normalise_min_max_and_constant_columns():
    points = np.array([[0.2, 5.0], [1.0, 5.0], [0.6, 5.0]])
    np.testing.assert_allclose(aggregate.normalise(points), [[0, 1], [1, 1], [0.5, 1]])
    assert points[0, 0] == 0.2  # input untouched


def test_coverage_area_is_the_union_of_rectangles():
    assert aggregate.coverage_area(np.array([[1.0, 0.5], [0.5, 1.0]])) == pytest.approx(0.75)
    # 1 x 0.2 plus the part of 0.5 x 0.5 above it
    assert aggregate.coverage_area(np.array([[0.5, 0.5], [1.0, 0.2]])) == pytest.approx(0.35)
    assert aggregate.coverage_area(np.array([[0.5, 0.5], [0.4, 0.4]])) == pytest.approx(0.25)
    assert aggregate.coverage_area(np.array([[1.0, 1.0]])) == pytest.approx(1.0)


def test_pareto_mask_keeps_ties_and_drops_dominated_points():
    points = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.4, 0.4], [1.0, 0.0]])
    assert aggregate.pareto_mask(points).tolist() == [True, True, True, False, True]


def _table(values: dict[str, tuple[float, float]]) -> dict:
    """A metric table where every diversity metric reads d (oriented) and every quality q."""
    table = {}
    for label, (d, q) in values.items():
        row = {m.name: (d if m.higher_is_better else -d) for m in DIVERSITY_METRICS}
        table[label] = {**row, "judge": q, "loglik": q}
    return table


# Router r at (0.2, 1.0) and (0.6, 0.8); baseline aligned at (1.0, 0.0) and (0.6, 0.4).
# Normalised: r (0, 1), (0.5, 0.8) -> coverage 0.4; aligned (1, 0), (0.5, 0.4) -> 0.2.
# Frontier: both r points and aligned's (1, 0); aligned's (0.6, 0.4) is dominated.
PLANE = {"r1": (0.2, 1.0), "r2": (0.6, 0.8), "a1": (1.0, 0.0), "a2": (0.6, 0.4)}
METHODS = {"p-punc": ["r1", "r2"], "aligned": ["a1", "a2"]}


@pytest.mark.parametrize("diversity", ["distinct_1", "self_bleu"])  # higher- and lower-better
def test_plane_summary_by_hand(diversity):
    summary = aggregate.plane_summary(_table(PLANE), METHODS, diversity, "judge")
    assert summary["coverage"] == pytest.approx({"p-punc": 0.4, "aligned": 0.2})
    assert summary["dominance"] == pytest.approx({"p-punc": 2 / 3, "aligned": 1 / 3})
    assert sorted(summary["frontier"]) == ["a1", "r1", "r2"]


def test_plane_summary_leaves_out_nan_points_and_empty_planes():
    table = _table(PLANE)
    table["a2"]["judge"] = math.nan
    summary = aggregate.plane_summary(table, METHODS, "distinct_1", "judge")
    assert summary["coverage"]["aligned"] == pytest.approx(0.0)  # only (1, 0) is left
    for row in table.values():
        row["loglik"] = math.nan
    assert aggregate.plane_summary(table, METHODS, "distinct_1", "loglik") is None


def test_summarise_averages_planes_and_finds_the_joint_improvement():
    out = aggregate.summarise(_table(PLANE), METHODS)
    assert len(out["coverage"]["planes"]) == 22
    for kind in ("overall", "lexical", "semantic"):
        assert out["coverage"][kind] == pytest.approx({"p-punc": 0.4, "aligned": 0.2})
        assert out["dominance"][kind] == pytest.approx({"p-punc": 2 / 3, "aligned": 1 / 3})
    ji = out["joint_improvement"]
    assert (ji["router"], ji["baseline"]) == ("p-punc", "aligned")
    assert ji["relative"] == pytest.approx(0.4 / 0.2 - 1)


def test_joint_improvement_needs_both_kinds_and_a_baseline_with_area():
    assert aggregate.joint_improvement({"p-punc": 0.3}) is None
    assert aggregate.joint_improvement({"aligned": 0.3, "base": 0.1}) is None
    ji = aggregate.joint_improvement({"aligned": 0.0, "p": 0.2, "h": 0.3})
    assert ji["router"] == "h" and ji["relative"] is None


def test_record_metrics_and_metric_table_by_hand():
    def record(point, judges):
        return {
            "unit": {"point": point, "task": "t"},
            "answers": [
                {"text": "The cat sat.", "judge": judges[0], "loglik": -1.0, "tokens": 4},
                {"text": "the cat ran", "judge": judges[1], "loglik": -2.0, "tokens": 3},
            ],
            "embeddings": encode_vectors(np.eye(2)),
        }

    values = aggregate.record_metrics(record("x", [4.0, None]), threshold=0.8)
    assert values["judge"] == pytest.approx(4.0)  # a missing score is left out
    assert values["loglik"] == pytest.approx(-1.5)
    assert values["distinct_1"] == pytest.approx(4 / 6)
    assert values["embedding_distance"] == pytest.approx(1.0)
    table = aggregate.metric_table([record("x", [4.0, 2.0]), record("x", [2.0, 2.0])], 0.8)
    assert table["x"]["judge"] == pytest.approx(2.5)  # mean of the prompts' means 3 and 2
    assert set(table["x"]) >= set(ALL_METRICS)

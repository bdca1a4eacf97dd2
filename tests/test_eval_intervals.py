"""Bootstrap intervals, verdicts, fixed-range Coverage and the judge check, on small
synthetic records and tables (pure numpy; no model)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from baco_local.eval import aggregate, bootstrap, coverage, intervals, judge_check, report
from baco_local.eval.metrics import ALL_METRICS, DIVERSITY_METRICS
from baco_local.eval.runner import encode_vectors

WORDS = "the cat sat on a mat with dog ran far away over hills and sea blue red".split()


def _records(shifts: dict[str, float], n_prompts: int, seed: int = 0, k: int = 4) -> list[dict]:
    """Records of points whose judge ratings are 3 + shift + noise (sd 0.3) and
    log-likelihoods -2 + shift + noise (sd 0.2); random texts and unit vectors, so
    diversity differs only by chance."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_prompts):
        for label, shift in shifts.items():
            answers = [
                {
                    "text": " ".join(rng.choice(WORDS, 12)),
                    "judge": float(3 + shift + rng.normal(0, 0.3)),
                    "loglik": float(-2 + shift + rng.normal(0, 0.2)),
                    "tokens": 12,
                    "base_fraction": 0.3,
                }
                for _ in range(k)
            ]
            vectors = rng.normal(size=(k, 8))
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            out.append(
                {
                    "key": f"{label}-{i}",
                    "unit": {"point": label, "task": "t", "prompt_id": str(i), "prompt": "Hi."},
                    "answers": answers,
                    "embeddings": encode_vectors(vectors),
                    "seconds": 1.0,
                }
            )
    return out


def _analyse(records, methods, resamples=400):
    settings = bootstrap.BootstrapSettings(resamples, seed=1)
    return intervals.analyse(records, methods, k=4, threshold=0.57, settings=settings)


def _width(pair) -> float:
    return pair[1] - pair[0]


# --- bootstrap.py ------------------------------------------------------------------------


def test_resample_weights_are_seeded_counts_of_n_draws():
    weights = bootstrap.resample_weights(5, 200, seed=3)
    assert weights.shape == (200, 5) and (weights.sum(axis=1) == 5).all()
    np.testing.assert_array_equal(weights, bootstrap.resample_weights(5, 200, seed=3))
    assert not np.array_equal(weights, bootstrap.resample_weights(5, 200, seed=4))


def test_weighted_means_leave_out_nan_and_do_not_touch_their_input():
    values = np.array([[[1.0, np.nan], [3.0, 4.0]]])  # 1 point, 2 prompts, 2 metrics
    before = values.copy()
    means = bootstrap.weighted_means(values, np.array([[1, 1], [2, 0], [0, 2]]))
    np.testing.assert_allclose(means[:, 0, 0], [2.0, 1.0, 3.0])
    np.testing.assert_allclose(means[:, 0, 1], [4.0, np.nan, 4.0])
    np.testing.assert_array_equal(values, before)


def test_percentile_interval_and_the_word_real():
    samples = np.arange(1, 101, dtype=float)[:, None]  # 1..100
    low, high = bootstrap.percentile_interval(samples, 0.9)
    assert low[0] == pytest.approx(5.95) and high[0] == pytest.approx(95.05)
    assert bootstrap.is_real(0.1, 0.5) and bootstrap.is_real(-0.5, -0.1)
    assert not bootstrap.is_real(-0.1, 0.5) and not bootstrap.is_real(0.0, 0.5)
    assert not bootstrap.is_real(np.nan, 0.5)


@pytest.mark.parametrize("resamples", [-1, 1])
def test_bootstrap_settings_say_what_to_use_instead(resamples):
    with pytest.raises(ValueError, match="at least 2"):
        bootstrap.BootstrapSettings(resamples)
    with pytest.raises(ValueError, match="0.95"):
        bootstrap.BootstrapSettings(level=1.5)


# --- coverage.py -------------------------------------------------------------------------


def test_batched_plane_functions_match_the_one_plane_ones():
    rng = np.random.default_rng(0)
    points = rng.uniform(size=(6, 5, 2))
    points[2, 1] = np.nan  # an absent point in one resample
    before = points.copy()
    member = np.array([True, True, False, True, False])
    areas = coverage.coverage_areas(coverage.scale_minmax(points), member)
    fronts = coverage.frontier_masks(points)
    for b in range(6):
        keep = ~np.isnan(points[b]).any(axis=1)
        scaled = aggregate.normalise(points[b][keep])
        assert areas[b] == pytest.approx(aggregate.coverage_area(scaled[member[keep]]))
        expected = np.zeros(5, dtype=bool)
        expected[keep] = aggregate.pareto_mask(points[b][keep])
        np.testing.assert_array_equal(fronts[b], expected)
    np.testing.assert_array_equal(points, before)


def test_fixed_axes_natural_ranges_oriented_and_open_ones_widened_to_the_noise():
    assert coverage.fixed_axes("judge", 4, np.array([2.9, 3.0]), 0.5) == (1.0, 5.0)
    assert coverage.fixed_axes("semantic_classes", 4, np.array([2.0]), 0.0) == (1.0, 4.0)
    assert coverage.fixed_axes("self_bleu", 4, np.array([0.2]), 0.0) == (-1.0, 0.0)
    low, high = coverage.fixed_axes("loglik", 4, np.array([-2.0, -1.9]), 0.5)
    assert (low, high) == pytest.approx((-2.5, -1.4))  # spread 0.1, noise 0.5 each side
    low, high = coverage.fixed_axes("compression_ratio", 4, np.array([1.5, 2.5]), 0.1)
    assert (low, high) == pytest.approx((-2.6, -1.4))  # negated: lower is better


# The case: p-punc is clearly more diverse (0.55 vs 0.45) and rated 0.05 lower
# on the 1-5 judge; min-p sits between.
TINY_QUALITY_SPREAD = {"a": (0.45, 3.00), "p": (0.55, 2.95), "m": (0.50, 2.99)}
THREE = {"aligned": ["a"], "p-punc": ["p"], "min-p": ["m"]}


def _plane_table(points):
    table = {}
    for label, (d, q) in points.items():
        row = {m.name: (d if m.higher_is_better else -d) for m in DIVERSITY_METRICS}
        table[label] = {**row, "judge": q, "loglik": q}
    return table


def test_fixed_range_coverage_is_not_stretched_by_a_tiny_quality_spread_but_minmax_is():
    table = _plane_table(TINY_QUALITY_SPREAD)
    axes = {"embedding_distance": (0.0, 1.0), "judge": (1.0, 5.0)}
    fixed = aggregate.plane_summary(table, THREE, "embedding_distance", "judge", axes)
    minmax = aggregate.plane_summary(table, THREE, "embedding_distance", "judge")
    # min-max: the 0.05 quality gap is the whole axis; p-punc and aligned cover nothing
    assert minmax["coverage"] == pytest.approx({"aligned": 0.0, "p-punc": 0.0, "min-p": 0.4})
    # fixed: quality 2.95-3.00 is 0.49-0.50 of the judge's range, diversity decides
    assert fixed["coverage"] == pytest.approx(
        {"aligned": 0.45 * 0.5, "p-punc": 0.55 * 0.4875, "min-p": 0.5 * 0.4975}
    )
    assert max(fixed["coverage"], key=fixed["coverage"].get) == "p-punc"
    raw = coverage.oriented(np.array([[TINY_QUALITY_SPREAD[x] for x in "ap"]]), ("vendi", "judge"))
    gap = np.diff(coverage.scale_fixed(raw, [1, 1], [4, 5])[0, :, 1])[0]
    assert abs(gap) == pytest.approx(0.0125)
    assert abs(np.diff(coverage.scale_minmax(raw)[0, :, 1])[0]) == pytest.approx(1.0)


# --- intervals.py ------------------------------------------------------------------------


def test_intervals_shrink_with_more_prompts():
    methods = {"aligned": ["a"], "p-punc": ["p"]}
    few = _analyse(_records({"a": 0.0, "p": 0.0}, 6), methods)
    many = _analyse(_records({"a": 0.0, "p": 0.0}, 60), methods)
    for name in ("judge", "distinct_2", "embedding_distance"):
        # 10 times the prompts: about sqrt(10) = 3.2 times narrower
        assert (
            _width(many["metric_intervals"]["a"][name])
            < _width(few["metric_intervals"]["a"][name]) * 0.7
        )
    # Coverage on planes with natural (fixed) ranges narrows too. (Min-max Coverage of
    # two equal methods need not: each resample stretches their noise to fill the axes.)
    for plane in ("distinct_2/judge", "embedding_distance/judge", "vendi/judge"):
        small = few["scales"]["fixed"]["coverage_intervals"]["planes"][plane]["p-punc"]
        large = many["scales"]["fixed"]["coverage_intervals"]["planes"][plane]["p-punc"]
        assert _width(large) < _width(small) * 0.7


def test_a_true_difference_is_real_and_a_null_one_is_not():
    methods = {"aligned": ["a"], "p-punc": ["p"], "min-p": ["m"]}
    out = _analyse(_records({"a": 0.0, "p": 0.0, "m": -0.5}, 30), methods)
    diffs = out["point_differences"]
    assert diffs["reference"] == "a"
    assert diffs["points"]["m"]["judge"]["real"]  # 0.5 lower on every prompt, on average
    assert diffs["points"]["m"]["judge"]["interval"][1] < 0
    assert not diffs["points"]["p"]["judge"]["real"]  # same distribution
    low, high = diffs["points"]["p"]["judge"]["interval"]
    assert low < diffs["points"]["p"]["judge"]["difference"] < high


def test_a_joint_improvement_carries_the_word_real_only_when_its_interval_excludes_0():
    better = {"aligned": ["a"], "p-punc": ["p"]}
    # p-punc a whole point better on both quality metrics: more area on every plane
    out = _analyse(_records({"a": 0.0, "p": 1.0}, 20), better)
    ji = out["scales"]["fixed"]["joint_improvement"]
    assert ji["router"] == "p-punc" and ji["real"] and ji["difference_interval"][0] > 0
    assert ji["relative_interval"][0] > 0
    # the same distribution for both: within noise
    out = _analyse(_records({"a": 0.0, "p": 0.0}, 20), better)
    ji = out["scales"]["fixed"]["joint_improvement"]
    assert not ji["real"]
    assert ji["difference_interval"][0] < 0 < ji["difference_interval"][1]
    line = report.joint_line(
        {"coverage_scale": "fixed", "coverage_by_scale": {"fixed": {"joint_improvement": ji}}}
    )
    assert "within noise, not real" in line and "includes 0" in line
    assert "few prompts" not in line  # no bootstrap facts given: nothing to caution


def test_a_bootstrap_over_few_prompts_is_flagged_as_a_hint():
    from baco_local.eval import interval_report as ir

    def facts(prompts: int) -> dict:
        boot = {"resamples": 50, "prompts": prompts, "level": 0.95, "seed": 0}
        return {"bootstrap": boot}

    assert "Caution: with 2 prompts" in ir.interval_note(facts(2))
    assert "Caution" not in ir.interval_note(facts(ir.FEW_PROMPTS))
    ji = {"router": "p", "baseline": "a", "relative": 0.1, "router_coverage": 0.5,
          "baseline_coverage": 0.4, "real": True, "difference": 0.1,
          "difference_interval": [0.05, 0.15]}  # fmt: skip
    few = {"coverage_scale": "fixed", "coverage_by_scale": {"fixed": {"joint_improvement": ji}}}
    assert "real (coverage" in ir.joint_line(few | facts(2))
    assert "see the caution above" in ir.joint_line(few | facts(2))
    assert "caution" not in ir.joint_line(few | facts(30))


def test_the_point_estimates_are_the_plain_tables_and_the_resampling_is_seeded():
    records = _records({"a": 0.0, "p": 0.2}, 8)
    methods = {"aligned": ["a"], "p-punc": ["p"]}
    out = _analyse(records, methods, resamples=50)
    table = aggregate.metric_table(records, 0.57)
    plain = aggregate.summarise(table, methods)
    assert out["scales"]["minmax"]["coverage"]["overall"] == pytest.approx(
        plain["coverage"]["overall"]
    )
    assert out["scales"]["minmax"]["dominance"]["overall"] == pytest.approx(
        plain["dominance"]["overall"]
    )
    assert out == _analyse(records, methods, resamples=50)  # same seed, same figures
    for label in ("a", "p"):
        for name, (low, high) in out["metric_intervals"][label].items():
            assert low <= table[label][name] + 1e-9 and table[label][name] <= high + 1e-9


def test_results_json_carries_an_interval_for_every_metric_and_coverage_figure():
    records = _records({"a": 0.0, "p": 0.1, "m": 0.0}, 6)
    methods = {"aligned": ["a"], "p-punc": ["p"], "min-p": ["m"]}
    info = {"pair": "x", "tasks": ["t"], "prompts": 6, "k": 4, "seed": 0, "threshold": 0.57}
    info |= {"embedding": "e", "seconds": 1.0, "compute_seconds": 2.0}
    results = report.build_results(
        records, methods, info, bootstrap=bootstrap.BootstrapSettings(100)
    )
    json.dumps(results, allow_nan=False)
    for label in ("a", "p", "m"):
        assert set(results["metric_intervals"][label]) >= set(ALL_METRICS)
    for scale in ("fixed", "minmax"):
        part = results["coverage_by_scale"][scale]
        for kind in ("overall", "lexical", "semantic"):
            assert set(part["coverage_intervals"][kind]) == set(methods)
        assert len(part["coverage_intervals"]["planes"]) == 22
        for group in ("judge_planes", "loglik_planes"):  # 11 planes per quality metric
            assert set(part["coverage_intervals"][group]) == set(methods)
        assert "real" in part["joint_improvement"]
    assert results["coverage"] == results["coverage_by_scale"]["fixed"]["coverage"]
    assert set(results["dominance_intervals"]["overall"]) == set(methods)
    text = report.terminal_report(results)
    assert "[low, high]: 95% bootstrap interval over prompts (100 resamples" in text
    assert "Joint improvement (fixed ranges)" in text and "Joint improvement (min-max" in text
    markdown = report.markdown_report(results, [])
    assert (
        "## Coverage scaled both ways" in markdown and "## Which differences are real" in markdown
    )
    none = report.build_results(records, methods, info, bootstrap=bootstrap.BootstrapSettings(0))
    assert none["metric_intervals"] == {} and "no verdict" in report.joint_line(none)


# --- judge_check.py ----------------------------------------------------------------------


def test_broken_answers_and_the_reversed_rubric():
    text = "one two three four five six seven eight nine"
    shuffled = judge_check.shuffle_words(text, seed=0)
    assert shuffled != text and sorted(shuffled.split()) == sorted(text.split())
    assert judge_check.truncate_words(text) == "one two three"
    flipped = judge_check.reversed_rubric()
    scale = [line for line in flipped.splitlines() if line[:1].isdigit()]
    assert [line[0] for line in scale] == ["1", "2", "3", "4", "5"]
    assert "{prompt}" in flipped and "{answer}" in flipped


def test_picks_take_one_answer_per_prompt_first():
    records = _records({"a": 0.0, "p": 0.0}, 5)
    picks = judge_check.pick_answers(records, 5, seed=0)
    assert len({p["key"].split("-")[1] for p in picks}) == 5
    assert judge_check.pick_answers(records, 5, seed=0) == picks


class _FakeJudge:
    """Rates by a rule on the text; `original` texts are known to it."""

    def __init__(self, originals, fair: bool):
        self.originals, self.fair = set(originals), fair

    def judge(self, prompt, answer, rubric=None):
        if not self.fair:
            return 3.0
        return 4.0 if answer in self.originals else 2.0


@pytest.mark.parametrize("fair", [True, False])
def test_the_judge_check_flags_a_judge_that_cannot_tell_broken_answers_apart(fair):
    records = _records({"a": 0.0}, 8)
    picks = judge_check.pick_answers(records, 8, seed=0)
    rows = judge_check.run_check(_FakeJudge([p["text"] for p in picks], fair), picks, seed=0)
    check = judge_check.summarise_check(rows, bootstrap.BootstrapSettings(200))
    assert check["answers"] == 8
    assert check["flagged"] is (not fair)
    lines = judge_check.judge_check_lines(check)
    assert ("FLAGGED" in lines[0]) is (not fair)
    if fair:
        assert check["separation"]["shuffled"]["interval"] == [2.0, 2.0]
    else:
        assert "does not rate shuffled answers reliably below" in lines[0]


def test_point_values_do_not_depend_on_the_number_of_resamples():
    # An open metric's axis is widened by its bootstrap noise: measured on the default
    # 1000 draws whatever --bootstrap says, so 0, 50 and 1000 give the same points.
    records = _records({"a": 0.0, "p": 0.3}, 6)
    methods = {"aligned": ["a"], "p-punc": ["p"]}
    runs = [_analyse(records, methods, resamples=b) for b in (0, 50, 1000)]
    axes = [run["axes"] for run in runs]
    assert axes[0] == axes[1] == axes[2]
    assert any(low != high for low, high in axes[0].values())
    coverages = [run["scales"]["fixed"]["coverage"] for run in runs]
    assert coverages[0] == coverages[1] == coverages[2]


def test_the_judge_checks_verdict_does_not_depend_on_bootstrap():
    records = _records({"a": 0.0}, 8)
    picks = judge_check.pick_answers(records, 8, seed=0)
    judge = _FakeJudge([p["text"] for p in picks[:5]], True)  # a judge right on 5 of 8
    rows = judge_check.run_check(judge, picks, seed=0)
    checks = [judge_check.summarise_check(rows, bootstrap.BootstrapSettings(b)) for b in (0, 2)]
    default = judge_check.summarise_check(rows, bootstrap.BootstrapSettings())
    assert checks[0] == checks[1] == default
    for difference in default["separation"].values():  # each interval holds its mean
        low, high = difference["interval"]
        assert low <= difference["mean"] <= high

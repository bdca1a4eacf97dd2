"""Sampling, uncertainty and the ensemble mixture on four-token vocabularies, by hand."""

import math

import numpy as np
import pytest

from baco_local.core.distribution import make_dist
from baco_local.core.sampling import Mixture, Sampler, _pick
from baco_local.core.settings import GenerationSettings
from baco_local.core.uncertainty import UncertaintyMeter

# probabilities 0.5, 0.25, 0.125, 0.125 at temperature 1
LOGITS = np.log(np.array([0.5, 0.25, 0.125, 0.125], dtype=np.float32))


def sampler(**kw):
    kw.setdefault("temperature", 1.0)
    kw.setdefault("top_k", 0)
    kw.setdefault("min_p", 0.0)
    kw.setdefault("top_p", 1.0)
    return Sampler(4, GenerationSettings(**kw))


def draw_all(s, logits, points):
    return [s.draw(logits, u) for u in points]


def test_no_filters_is_the_inverse_cdf_of_the_distribution():
    # cumulative 0.5, 0.75, 0.875, 1.0
    assert draw_all(sampler(), LOGITS, [0.0, 0.49, 0.51, 0.74, 0.76, 0.874, 0.9, 0.999]) == [
        0,
        0,
        1,
        1,
        2,
        2,
        3,
        3,
    ]


def test_greedy_is_the_first_argmax_and_ignores_u():
    tied = np.array([1.0, 3.0, 3.0, 0.0], dtype=np.float32)
    assert draw_all(sampler(temperature=0), tied, [0.0, 0.99]) == [1, 1]


def test_top_k_keeps_the_k_most_likely_renormalised():
    # top-2: 0.5 and 0.25 -> 2/3 and 1/3
    assert draw_all(sampler(top_k=2), LOGITS, [0.6, 0.7, 0.99]) == [0, 1, 1]


def test_min_p_keeps_tokens_at_least_min_p_of_the_top():
    # min_p 0.3: 0.25/0.5 = 0.5 stays; 0.125/0.5 = 0.25 goes
    ids, weights = sampler(min_p=0.3).candidates(LOGITS)
    assert ids.tolist() == [0, 1]
    assert np.allclose(weights / weights.sum(), [2 / 3, 1 / 3])


def test_top_p_keeps_the_smallest_prefix_reaching_the_mass():
    ids, _ = sampler(top_p=0.7).candidates(LOGITS)  # 0.5 < 0.7 <= 0.75
    assert ids.tolist() == [0, 1]
    ids, _ = sampler(top_p=0.5).candidates(LOGITS)  # the top token alone reaches 0.5
    assert ids.tolist() == [0]
    ids, _ = sampler(top_p=0.8).candidates(LOGITS)
    assert ids.tolist() == [0, 1, 2]


def test_top_p_after_top_k_and_min_p_is_renormalised_over_the_survivors():
    # min_p 0.3 leaves 2/3, 1/3; top_p 0.6 then needs only the first
    ids, _ = sampler(min_p=0.3, top_p=0.6).candidates(LOGITS)
    assert ids.tolist() == [0]


def test_temperature_sharpens_before_the_filters():
    # T = 0.5 squares the probabilities: 0.25, 0.0625, 0.015625, 0.015625 (/0.34375)
    ids, weights = sampler(temperature=0.5).candidates(LOGITS)
    p = weights / weights.sum()
    assert ids.tolist() == [0, 1, 2, 3]
    assert np.allclose(p, np.array([0.25, 0.0625, 0.015625, 0.015625]) / 0.34375, atol=1e-6)


def test_ties_are_ordered_by_token_id():
    ids, _ = sampler().candidates(LOGITS)
    assert ids.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize(
    "kw", [{}, {"top_k": 2}, {"min_p": 0.2}, {"top_p": 0.7}, {"temperature": 0}]
)
def test_sampling_never_modifies_the_logits(kw):
    logits = LOGITS.copy()
    logits.setflags(write=False)  # a write would raise
    sampler(**kw).draw(logits, 0.3)
    assert np.array_equal(logits, LOGITS)


def test_top_p_alone_on_a_large_vocabulary_matches_a_full_sort():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, 5000).astype(np.float32)
    s = Sampler(5000, GenerationSettings(temperature=1.0, top_k=0, min_p=0.0, top_p=0.9))
    ids, _ = s.candidates(logits)
    p = np.exp(logits - logits.max())
    p /= p.sum()
    order = np.argsort(-p, kind="stable")
    needed = int(np.searchsorted(np.cumsum(p[order]), 0.9)) + 1
    assert ids.tolist() == order[:needed].tolist()


def test_uncertainty_of_a_uniform_and_a_peaked_row():
    meter = UncertaintyMeter(4)
    top, p1, h = meter.measure(np.zeros(4, dtype=np.float32))
    assert top == 0 and p1 == pytest.approx(0.25) and h == pytest.approx(math.log(4), rel=1e-6)
    top, p1, h = meter.measure(LOGITS)
    # H = 0.5 ln 2 + 0.25 ln 4 + 2 * 0.125 ln 8 = 1.75 ln 2
    assert top == 0 and p1 == pytest.approx(0.5, rel=1e-6)
    assert h == pytest.approx(1.75 * math.log(2), rel=1e-5)


def test_mixture_is_the_weighted_average_of_the_two_distributions():
    base = np.log(np.array([0.7, 0.1, 0.1, 0.1], dtype=np.float32))
    aligned = np.log(np.array([0.1, 0.1, 0.1, 0.7], dtype=np.float32))
    before = (base.copy(), aligned.copy())
    mix = Mixture(4, weight_base=0.25, temperature=1.0)
    p = np.exp(mix.log_probs(base, aligned))
    assert np.allclose(p, [0.25 * 0.7 + 0.75 * 0.1, 0.1, 0.1, 0.25 * 0.1 + 0.75 * 0.7], atol=1e-6)
    assert mix.base_share(0) == pytest.approx(0.175 / 0.25, rel=1e-5)
    assert np.array_equal(base, before[0]) and np.array_equal(aligned, before[1])


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits():
    logits = np.array([2.0, -1.0, 1.0, 1.5], dtype=np.float32)
    before = logits.copy()
    s = Sampler(4, GenerationSettings(temperature=0, repeat_penalty=2.0))
    assert s.penalise(logits, [0, 1, 1]).tolist() == [1.0, -2.0, 1.0, 1.5]
    assert np.array_equal(logits, before)  # the borrowed row is untouched
    assert s.penalise(logits, []) is logits  # nothing to penalise: no copy
    assert s.draw(logits, 0.5) == 0
    assert s.draw(logits, 0.5, recent=[0]) == 3  # 2.0 -> 1.0 falls below 1.5


def test_the_penalty_path_does_not_modify_the_logits_either():
    logits = LOGITS.copy()
    logits.setflags(write=False)
    s = sampler(repeat_penalty=1.5)
    s.draw(logits, 0.3, recent=[0, 1])
    assert np.array_equal(logits, LOGITS)


def test_entropy_ignores_tokens_that_can_never_be_drawn():
    meter = UncertaintyMeter(4)
    top, p1, h = meter.measure(np.array([0.0, 0.0, -np.inf, -np.inf], dtype=np.float32))
    assert p1 == pytest.approx(0.5) and h == pytest.approx(math.log(2), rel=1e-6)


# --- many rows at once (the batched loop) ------------------------------------------------

ROW_SETTINGS = [
    dict(),  # the defaults: top-k 40, min-p 0.05, top-p 0.95, penalty 1.1
    dict(min_p=0.0, top_k=5, top_p=0.9),
    dict(min_p=0.1, top_k=0, top_p=1.0),
    dict(min_p=0.0, top_k=0, top_p=0.8),
    dict(temperature=0.0),
    dict(repeat_penalty=1.5, top_k=0),
    dict(repeat_penalty=0.8),  # a penalty below 1 raises recent tokens
]


@pytest.mark.parametrize("changes", ROW_SETTINGS)
def test_drawing_rows_at_once_is_drawing_each_row_alone(changes):
    rng = np.random.default_rng(7)
    rows = rng.normal(0, 3, size=(6, 300)).astype(np.float32)
    kept = rows.copy()
    settings = GenerationSettings(**changes)
    s = Sampler(300, settings)
    us = list(rng.random(6))
    recents = [list(rng.integers(0, 300, size=8)) for _ in range(6)]
    recents[2].append(int(np.argmax(rows[2])))  # a row whose most likely token is recent
    together = s.draw_rows(rows, us, recents)
    alone = [s.draw(rows[i], us[i], recents[i]) for i in range(6)]
    assert together == alone
    assert np.array_equal(rows, kept)  # the borrowed rows are never written


@pytest.mark.parametrize(
    "changes", [dict(top_k=0, top_p=1.0), dict(), dict(repeat_penalty=1.5), dict(top_p=0.5)]
)
def test_min_p_with_a_penalty_is_min_p_on_a_penalised_copy(changes):
    # Draws and distributions cut min-p on the raw row and penalise only the survivors;
    # they must equal the plain way: penalise a copy of the whole row, then cut. The
    # penalty may leave the top token on top or move another above it, and a row may lie
    # below zero (the penalty then multiplies).
    rng = np.random.default_rng(11)
    settings = GenerationSettings(min_p=0.2, **changes)
    s = Sampler(64, settings)
    moved = 0
    for trial in range(200):
        rows = rng.normal(0, 1.5, size=(4, 64)).astype(np.float32)
        rows[3] -= 8.0  # every logit negative
        recents = [[int(np.argmax(row))] + list(rng.integers(0, 64, size=3)) for row in rows]
        recents[1] = list(rng.integers(0, 64, size=4))  # the top token may not be recent
        us = list(rng.random(4))
        plain = [s.candidates(s.penalise(rows[i], recents[i]).copy()) for i in range(4)]
        expected = [_pick(*plain[i], us[i]) for i in range(4)]
        assert s.draw_rows(rows, us, recents) == expected, trial
        assert [s.draw(rows[i], us[i], recents[i]) for i in range(4)] == expected, trial
        for i in range(4):
            dist, reference = s.distribution(rows[i], recents[i]), make_dist(*plain[i])
            assert np.array_equal(dist.ids, reference.ids), trial
            assert np.array_equal(dist.probs, reference.probs), trial
        moved += sum(
            int(np.argmax(s.penalise(row, recent))) != int(np.argmax(row))
            for row, recent in zip(rows, recents, strict=True)
        )
    assert moved > 50  # the case where another token overtakes the penalised top is met


def test_measuring_rows_at_once_is_measuring_each_row_alone():
    from baco_local.core.uncertainty import measure_rows

    rng = np.random.default_rng(3)
    rows = rng.normal(0, 4, size=(5, 1000)).astype(np.float32)
    rows[2, 10] = -np.inf  # a token no model can write
    meter = UncertaintyMeter(1000)
    top_ids, top1, entropy = measure_rows(rows)
    for i in range(5):
        t, p, h = meter.measure(rows[i])
        assert top_ids[i] == t
        assert top1[i] == pytest.approx(p, rel=1e-5)
        assert entropy[i] == pytest.approx(h, rel=1e-4, abs=1e-5)


def test_mixing_rows_at_once_is_mixing_each_pair_alone():
    rng = np.random.default_rng(5)
    base = rng.normal(0, 2, size=(3, 50)).astype(np.float32)
    aligned = rng.normal(0, 2, size=(3, 50)).astype(np.float32)
    rows = Mixture(50, 0.3, 0.8)
    together = rows.log_probs_rows(base, aligned)
    shares = rows.base_shares([4, 9, 17])
    for i, token in enumerate((4, 9, 17)):
        alone = Mixture(50, 0.3, 0.8)
        assert np.allclose(together[i], alone.log_probs(base[i], aligned[i]), atol=1e-5)
        assert shares[i] == pytest.approx(alone.base_share(token), rel=1e-5)

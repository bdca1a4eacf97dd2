"""Quality metrics: the rubric expectation and log-likelihood by hand, then on real models."""

from __future__ import annotations

import math

import numpy as np
import pytest

from baco_local.errors import PromptError
from baco_local.eval import quality


def test_rubric_expectation_by_hand():
    logits = np.full(10, -50.0, dtype=np.float32)
    logits[[1, 2]] = math.log(1.0)  # score 1 (two spellings: probabilities add)
    logits[3] = math.log(2.0)  # score 2
    logits[9] = 5.0  # a non-digit token: ignored
    groups = [[1, 2], [3], [4], [5], [6]]
    # p(1) : p(2) = 2 : 2, the rest ~0 -> 1.5
    assert quality.rubric_expectation(logits, groups) == pytest.approx(1.5, abs=1e-9)
    before = logits.copy()
    uniform = np.zeros(10, dtype=np.float32)
    assert quality.rubric_expectation(uniform, [[0], [1], [2], [3], [4]]) == pytest.approx(3.0)
    np.testing.assert_array_equal(logits, before)  # not modified


def test_rubric_expectation_is_stable_for_large_logits():
    logits = np.array([1000.0, 1000.0, 0, 0, 0], dtype=np.float32)
    assert quality.rubric_expectation(logits, [[0], [1], [2], [3], [4]]) == pytest.approx(1.5)


def test_mean_logprob():
    assert quality.mean_logprob(np.array([-1.0, -2.0, -3.0])) == pytest.approx(-2.0)
    assert math.isnan(quality.mean_logprob(np.array([])))


def test_score_token_ids_takes_single_tokens_with_and_without_space():
    vocab = {"1": [11], " 1": [21], "2": [12], " 2": [30, 12], "3": [13], " 3": [23]}
    vocab |= {"4": [14], " 4": [24], "5": [15], " 5": [25]}
    assert quality.score_token_ids(vocab.__getitem__) == [
        [11, 21],
        [12],
        [13, 23],
        [14, 24],
        [15, 25],
    ]
    with pytest.raises(PromptError, match="single token"):
        quality.score_token_ids(lambda text: [1, 2])


@pytest.fixture(scope="module")
def tiny_scorer(tiny_pair):
    scorer = quality.QualityScorer.for_pair(tiny_pair.loaded, n_threads=2)
    yield scorer
    scorer.close()


def test_scorer_on_the_tiny_pair(tiny_scorer, tiny_pair):
    prompt = "Name a cat."
    answer = tiny_pair.generate(prompt, router="aligned", max_tokens=12, seed=3).text
    loglik = tiny_scorer.loglik(prompt, answer)
    assert loglik < 0 and math.isfinite(loglik)
    assert tiny_scorer.loglik(prompt, answer) == pytest.approx(loglik, abs=1e-4)  # replayable
    assert math.isnan(tiny_scorer.loglik(prompt, ""))
    judged = tiny_scorer.judge(prompt, answer)
    assert 1.0 <= judged <= 5.0


@pytest.mark.gemma
def test_gemma_prefers_fluent_text_over_word_salad(gemma_path):
    from baco_local import Pair

    with Pair.load(base=gemma_path, aligned="in-context", n_ctx=2048, n_threads=2) as pair:
        scorer = quality.QualityScorer.for_pair(pair.loaded, n_threads=2)
        try:
            prompt = "Suggest a name for a bakery."
            fluent = scorer.loglik(prompt, "How about Morning Crumb? It sounds warm and fresh.")
            salad = scorer.loglik(prompt, "Crumb purple whenever seventeen the of bakery loudly.")
            assert fluent > salad
            assert 1.0 <= scorer.judge(prompt, "How about Morning Crumb?") <= 5.0
        finally:
            scorer.close()

"""Diversity metrics on inputs small enough to work out by hand."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from baco_local.eval import metrics_lexical as lex
from baco_local.eval import metrics_semantic as sem
from baco_local.eval.metrics import ALL_METRICS, DIVERSITY_METRICS, diversity_metrics

CATS = ["The cat sat.", "the cat ran"]


def test_words_lower_cases_and_drops_punctuation():
    assert lex.words("Hello, World! It's 3pm.") == ["hello", "world", "it", "s", "3pm"]


def test_distinct_n_by_hand():
    # words: the cat sat | the cat ran -> 6 words, 4 distinct; 4 bigrams, 3 distinct.
    assert lex.distinct_n(CATS, 1) == pytest.approx(4 / 6)
    assert lex.distinct_n(CATS, 2) == pytest.approx(3 / 4)
    assert lex.distinct_n(CATS, 3) == pytest.approx(1.0)
    assert math.isnan(lex.distinct_n(["one", "two"], 2))  # no bigram at all


def test_ngram_entropy_by_hand():
    # bigrams: (the cat) x2, (cat sat), (cat ran): -(1/2 log2 1/2 + 2 * 1/4 log2 1/4) = 1.5
    assert lex.ngram_entropy(CATS, 2) == pytest.approx(1.5)
    assert lex.ngram_entropy(["a b", "a b"], 2) == pytest.approx(0.0)


def test_bleu_by_hand():
    hyp = "the cat sat on the mat".split()
    ref = "the cat sat on a mat".split()
    # precisions 5/6, then smoothed (3+1)/(5+1), (2+1)/(4+1), (1+1)/(3+1); same lengths.
    assert lex.bleu(hyp, [ref]) == pytest.approx((5 / 6 * 4 / 6 * 3 / 5 * 2 / 4) ** 0.25)
    # All precisions 1, hypothesis 2 words vs reference 4: brevity penalty exp(1 - 4/2).
    assert lex.bleu(["the", "cat"], ["the cat sat on".split()]) == pytest.approx(math.exp(-1))
    assert lex.bleu(["a", "b"], [["c", "d"]]) == 0.0


def test_self_bleu_identical_and_disjoint_answers():
    assert lex.self_bleu(["a b c d e", "a b c d e"]) == pytest.approx(1.0)
    assert lex.self_bleu(["a b", "c d"]) == 0.0
    pair = ["the cat sat on the mat", "the cat sat on a mat"]
    assert lex.self_bleu(pair) == pytest.approx((1 / 6) ** 0.25)  # symmetric here
    assert math.isnan(lex.self_bleu(["only one", ""]))


def test_compression_ratio_rewards_repetition():
    same = ["the cat sat on the mat"] * 5
    varied = ["the cat sat", "a dog barked loudly", "rain fell on tin", "we ate figs", "hm"]
    assert lex.compression_ratio(same) > lex.compression_ratio(varied)
    import zlib

    raw = "\n".join(same).encode()
    assert lex.compression_ratio(same) == pytest.approx(len(raw) / len(zlib.compress(raw, 9)))
    assert math.isnan(lex.compression_ratio([""]))


def test_lcs_length_by_hand_and_against_dynamic_programming():
    assert lex.lcs_length(list("abcbdab"), list("bdcaba")) == 4
    assert lex.lcs_length([], ["a"]) == 0

    def reference(a, b):
        table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
        for i, x in enumerate(a):
            for j, y in enumerate(b):
                table[i + 1][j + 1] = (
                    table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
                )
        return table[-1][-1]

    rng = random.Random(3)
    for _ in range(300):
        a = [rng.choice("abcd") for _ in range(rng.randint(0, 15))]
        b = [rng.choice("abcd") for _ in range(rng.randint(0, 15))]
        assert lex.lcs_length(a, b) == reference(a, b)


def test_rouge_l_by_hand():
    # LCS of a b c d / a c d e is a c d (3): F1 = 2 * 3 / (4 + 4)
    assert lex.rouge_l("a b c d".split(), "a c d e".split()) == pytest.approx(0.75)
    # pairs: identical (1), and two disjoint pairs (0): mean 1/3
    assert lex.rouge_l_homogenisation(["a b", "a b", "c d"]) == pytest.approx(1 / 3)
    assert math.isnan(lex.rouge_l_homogenisation(["alone"]))


def test_mean_pairwise_distance_by_hand():
    assert sem.mean_pairwise_distance(np.array([[1.0, 0], [0, 2.0]])) == pytest.approx(1.0)
    assert sem.mean_pairwise_distance(np.array([[1.0, 0], [3.0, 0]])) == pytest.approx(0.0)
    # cosines 0, -1, 0 -> distances 1, 2, 1
    three = np.array([[1.0, 0], [0, 1.0], [-1.0, 0]])
    assert sem.mean_pairwise_distance(three) == pytest.approx(4 / 3)
    assert math.isnan(sem.mean_pairwise_distance(np.ones((1, 2))))


def test_vendi_score_by_hand():
    assert sem.vendi_score(np.ones((3, 4))) == pytest.approx(1.0)
    assert sem.vendi_score(np.eye(3)) == pytest.approx(3.0)
    # cosine 0.5: eigenvalues of K/2 are 0.75 and 0.25
    two = np.array([[1.0, 0.0], [0.5, math.sqrt(0.75)]])
    entropy = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert sem.vendi_score(two) == pytest.approx(math.exp(entropy))


def test_equivalence_classes_by_hand():
    vectors = np.array([[1.0, 0], [0.9, 0.1], [0, 1.0], [0.1, 0.9]])
    assert sem.equivalence_classes(vectors, 0.9) == [0, 0, 1, 1]
    assert sem.semantic_classes(vectors, 0.9) == 2.0
    assert sem.semantic_entropy(vectors, 0.9) == pytest.approx(math.log(2))
    a, b = [1.0, 0.0], [0.0, 1.0]
    assert sem.equivalence_classes(np.array([a, b, a]), 0.8) == [0, 1, 0]
    expected = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))
    assert sem.semantic_entropy(np.array([a, b, a]), 0.8) == pytest.approx(expected)
    assert sem.semantic_classes(np.array([a, b, a]), 1.01) == 3.0  # nothing is that similar


def test_centre_removes_the_shared_direction_and_leaves_input_alone():
    vectors = np.array([[2.0, 1.0], [0.0, 1.0]])
    mean = np.array([1.0, 1.0])
    np.testing.assert_allclose(sem.centre(vectors, mean), [[1.0, 0.0], [-1.0, 0.0]])
    np.testing.assert_array_equal(vectors, [[2.0, 1.0], [0.0, 1.0]])


def test_zero_rows_are_similar_to_nothing():
    vectors = np.array([[0.0, 0.0], [1.0, 0.0]])
    np.testing.assert_array_equal(sem.unit_rows(vectors), [[0.0, 0.0], [1.0, 0.0]])
    assert sem.vendi_score(vectors) == pytest.approx(2.0)


def test_registry_covers_eleven_diversity_and_two_quality_metrics():
    assert len(DIVERSITY_METRICS) == 11
    assert {m.kind for m in DIVERSITY_METRICS} == {"lexical", "semantic"}
    assert [m.name for m in ALL_METRICS.values() if m.kind == "quality"] == ["judge", "loglik"]
    assert all(len(m.short) <= 7 and m.description for m in ALL_METRICS.values())
    values = diversity_metrics(CATS, np.eye(2), threshold=0.8)
    assert list(values) == [m.name for m in DIVERSITY_METRICS]
    assert values["distinct_1"] == pytest.approx(4 / 6)
    assert values["semantic_classes"] == 2.0

"""Semantic diversity of k answers from their embeddings: pure numpy.

Every function takes `vectors`, shape (k, d), float, one row per answer, and returns a
float (nan when fewer than the answers it needs). Rows are compared by cosine
similarity; a zero row (an empty answer) is similar to nothing.

Equivalence classes are NoveltyBench's distinct count (answers that say the same thing
form one class) with an embedding test instead of its trained classifier: taking the k
answers in order, an answer joins the first class whose first member (its
representative) it resembles with cosine similarity >= `threshold`, otherwise it opens
a new class. The count of classes and the entropy of their sizes are reported.

The threshold for all-MiniLM-L6-v2, `MINILM_SAME_ABOVE`, was chosen on 60 hand-written
answer pairs to 16 open-ended prompts (tests/data/equivalence_pairs.jsonl): 30 say the
same thing in other words (short answers, jokes, haiku, story openings and advice of
up to four sentences), 30 are different answers to the same prompt. Their MiniLM
cosines: paraphrases 0.60-0.96, different answers 0.06-0.53 but for one pair at 0.72
(a cabin in the mountains vs camping by a lake: one outdoor weekend to the embedder).
0.57, the middle of the gap, classifies 59 of 60 right; any value from 0.55 to 0.60
does. NoveltyBench decides with a DeBERTa classifier fine-tuned on human judgements of
equivalence (threshold 0.102 on its score), which llama.cpp cannot run: the cosine
test is cruder (it sees topic as much as content), and counts are comparable across
runs with one embedder and threshold, not with NoveltyBench's own figures.
"""

from __future__ import annotations

import math

import numpy as np

NAN = float("nan")
MINILM_SAME_ABOVE = 0.57  # cosine on all-MiniLM-L6-v2 (see the module docstring)
ALIGNED_SAME_ABOVE = 0.8  # cosine on an aligned model's centred mean states (earlier default)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (zero rows stay zero); a new float64 array."""
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def centre(vectors: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Unit rows of (vectors - mean): removes the direction all texts share.

    A generative model's pooled states point mostly one way (every pair of texts has
    cosine ~0.8); subtracting the mean of reference texts keeps what differs.
    """
    return unit_rows(np.asarray(vectors, dtype=np.float64) - np.asarray(mean, dtype=np.float64))


def cosine_matrix(vectors: np.ndarray) -> np.ndarray:
    """(k, k) cosine similarities."""
    rows = unit_rows(vectors)
    return rows @ rows.T


def mean_pairwise_distance(vectors: np.ndarray) -> float:
    """Mean cosine distance (1 - cosine) over pairs of answers. Higher = more diverse."""
    k = len(vectors)
    if k < 2:
        return NAN
    upper = np.triu_indices(k, 1)
    return float(np.mean(1.0 - cosine_matrix(vectors)[upper]))


def vendi_score(vectors: np.ndarray) -> float:
    """Vendi score (Friedman and Dieng, 2023): exp of the entropy of the eigenvalues of
    K/k, K the cosine similarity matrix. The effective number of distinct answers, from
    1 (all the same) to k (all orthogonal). Higher = more diverse."""
    k = len(vectors)
    if k < 1:
        return NAN
    similarity = cosine_matrix(vectors)
    np.fill_diagonal(similarity, 1.0)  # a zero row (empty answer) is its own direction
    eigenvalues = np.clip(np.linalg.eigvalsh(similarity / k), 0.0, None)
    eigenvalues = eigenvalues[eigenvalues > 1e-12]
    return float(np.exp(-np.sum(eigenvalues * np.log(eigenvalues))))


def equivalence_classes(vectors: np.ndarray, threshold: float) -> list[int]:
    """Class index of each answer (greedy, in order; see the module docstring)."""
    similarity = cosine_matrix(vectors)
    leaders: list[int] = []
    labels = []
    for i in range(len(vectors)):
        joined = next((c for c, j in enumerate(leaders) if similarity[i, j] >= threshold), None)
        if joined is None:
            joined = len(leaders)
            leaders.append(i)
        labels.append(joined)
    return labels


def semantic_classes(vectors: np.ndarray, threshold: float) -> float:
    """NoveltyBench's distinct count: the number of equivalence classes among the k
    answers, 1 to k. Higher = more diverse."""
    return float(len(set(equivalence_classes(vectors, threshold)))) if len(vectors) else NAN


def semantic_entropy(vectors: np.ndarray, threshold: float) -> float:
    """Entropy (nats) of the share of answers in each class. Higher = more diverse."""
    labels = equivalence_classes(vectors, threshold)
    if not labels:
        return NAN
    k = len(labels)
    sizes = np.bincount(labels)
    return float(-sum(s / k * math.log(s / k) for s in sizes))

"""The metric registry: every metric's name, kind, direction and one-line meaning.

Diversity metrics are measured over the k answers to one prompt (then averaged over
prompts); quality metrics are measured per answer (then averaged over answers and
prompts). `higher_is_better` is the direction a user wants: for diversity metrics, the
direction of more diversity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import metrics_lexical as lex
from . import metrics_semantic as sem

LEXICAL, SEMANTIC, QUALITY = "lexical", "semantic", "quality"


@dataclass(frozen=True)
class MetricSpec:
    name: str
    short: str  # a column header of at most 7 characters
    kind: str  # lexical, semantic or quality
    higher_is_better: bool
    description: str
    # The range that fixed-range Coverage scales this axis by (see fixed_range):
    # "share" [0, 1], "count" [1, k], "log_count" [0, ln k], "rubric" [1, 5], or "open"
    # (no natural range: the observed range, widened on each side by its bootstrap noise).
    scale: str = "open"

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"


DIVERSITY_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "distinct_1", "dist-1", LEXICAL, True, "share of distinct words among all words", "share"
    ),
    MetricSpec("distinct_2", "dist-2", LEXICAL, True, "share of distinct word bigrams", "share"),
    MetricSpec("distinct_3", "dist-3", LEXICAL, True, "share of distinct word trigrams", "share"),
    MetricSpec("ngram_entropy", "ent-2", LEXICAL, True, "entropy (bits) of pooled word bigrams"),
    MetricSpec(
        "self_bleu", "sBLEU", LEXICAL, False, "mean BLEU-4 of each answer vs the others", "share"
    ),
    MetricSpec(
        "compression_ratio", "compr", LEXICAL, False, "raw / zlib-compressed size of the answers"
    ),
    MetricSpec(
        "rouge_l",
        "rougeL",
        LEXICAL,
        False,
        "mean pairwise ROUGE-L F1 (homogenisation)",
        "share",
    ),
    MetricSpec(
        "embedding_distance",
        "emb-d",
        SEMANTIC,
        True,
        "mean pairwise cosine distance of answers",
        "share",
    ),
    MetricSpec(
        "vendi",
        "vendi",
        SEMANTIC,
        True,
        "Vendi score: effective number of answers (1-k)",
        "count",
    ),
    MetricSpec(
        "semantic_classes",
        "classes",
        SEMANTIC,
        True,
        "distinct answers among the k (NoveltyBench's count: equivalence classes)",
        "count",
    ),
    MetricSpec(
        "semantic_entropy",
        "sem-ent",
        SEMANTIC,
        True,
        "entropy (nats) of the class sizes",
        "log_count",
    ),
)

QUALITY_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "judge",
        "judge",
        QUALITY,
        True,
        "aligned model's rubric score, probability-weighted, 1-5",
        "rubric",
    ),
    MetricSpec(
        "loglik", "loglik", QUALITY, True, "aligned model's mean log-probability per answer token"
    ),
)

ALL_METRICS = {m.name: m for m in DIVERSITY_METRICS + QUALITY_METRICS}

RUBRIC_RANGE = (1.0, 5.0)  # quality.RUBRIC_SCORES' ends


def fixed_range(name: str, k: int) -> tuple[float, float] | None:
    """The natural range of a metric for k answers per prompt, in its own units (not
    oriented); None for an open metric (n-gram entropy, compression, log-likelihood)."""
    scale = ALL_METRICS[name].scale
    if scale == "share":
        return (0.0, 1.0)
    if scale == "count":
        return (1.0, float(k))
    if scale == "log_count":
        return (0.0, math.log(k))
    if scale == "rubric":
        return RUBRIC_RANGE
    return None


def diversity_metrics(texts: Sequence[str], vectors: np.ndarray, threshold: float) -> dict:
    """All diversity metrics of one prompt's k answers.

    texts: the k answers. vectors: their embeddings, shape (k, d). threshold: the cosine
    similarity at which two answers count as equivalent.
    """
    return {
        "distinct_1": lex.distinct_n(texts, 1),
        "distinct_2": lex.distinct_n(texts, 2),
        "distinct_3": lex.distinct_n(texts, 3),
        "ngram_entropy": lex.ngram_entropy(texts, 2),
        "self_bleu": lex.self_bleu(texts),
        "compression_ratio": lex.compression_ratio(texts),
        "rouge_l": lex.rouge_l_homogenisation(texts),
        "embedding_distance": sem.mean_pairwise_distance(vectors),
        "vendi": sem.vendi_score(vectors),
        "semantic_classes": sem.semantic_classes(vectors, threshold),
        "semantic_entropy": sem.semantic_entropy(vectors, threshold),
    }

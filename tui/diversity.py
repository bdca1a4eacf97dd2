"""How different a set of answers is: distinct word n-grams and mean pairwise overlap.

Pure functions on strings, cheap enough to run after every answer in the brainstorm view.
Words are lower-cased runs of letters and digits (an apostrophe may join two runs), so
punctuation and capitalisation never count as a difference.

- distinct-n: unique word n-grams / all word n-grams, pooled over the answers. 1.0 means
  no n-gram appears twice anywhere in the set; lower means the answers repeat themselves
  or each other.
- similarity: the Jaccard overlap of two answers' word sets (|A & B| / |A | B|), averaged
  over every pair of answers. 0.0 means no word in common, 1.0 means the same words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

_WORD = re.compile(r"\w+(?:'\w+)*")


def words(text: str) -> list[str]:
    """The lower-cased words of text, in order."""
    return _WORD.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """Every run of n consecutive tokens (none when there are fewer than n)."""
    if n < 1:
        raise ValueError(f"n-gram size {n} must be at least 1")
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Unique word n-grams over all word n-grams, pooled over texts; 0.0 when there are none."""
    pooled = [gram for text in texts for gram in ngrams(words(text), n)]
    return len(set(pooled)) / len(pooled) if pooled else 0.0


def jaccard(a: set, b: set) -> float:
    """|a & b| / |a | b|; two empty sets are identical (1.0)."""
    union = a | b
    return len(a & b) / len(union) if union else 1.0


def mean_pairwise_similarity(texts: Sequence[str]) -> float | None:
    """Mean Jaccard overlap of the word sets of every pair of texts; None for fewer than two."""
    sets = [set(words(text)) for text in texts]
    pairs = list(combinations(sets, 2))
    if not pairs:
        return None
    return sum(jaccard(a, b) for a, b in pairs) / len(pairs)


@dataclass(frozen=True)
class Diversity:
    """The diversity of one set of answers (see the module docstring for each measure)."""

    answers: int
    distinct_1: float
    distinct_2: float
    similarity: float | None

    def summary(self) -> str:
        similarity = "-" if self.similarity is None else f"{self.similarity:.2f}"
        return (
            f"{self.answers} answers · distinct-1 {self.distinct_1:.2f} · "
            f"distinct-2 {self.distinct_2:.2f} · similarity {similarity}"
        )


def measure_diversity(texts: Sequence[str]) -> Diversity:
    """All the measures for one set of answers."""
    return Diversity(
        answers=len(texts),
        distinct_1=distinct_n(texts, 1),
        distinct_2=distinct_n(texts, 2),
        similarity=mean_pairwise_similarity(texts),
    )

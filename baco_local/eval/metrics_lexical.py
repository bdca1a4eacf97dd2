"""Lexical diversity of k answers to one prompt: pure Python, word n-grams.

Every function takes the k answers as strings and returns a float, or nan when the
answers hold too little text to measure (for example no bigram at all). Words are
lower-cased runs of letters and digits (`words`); punctuation is ignored.

Directions: distinct-n and n-gram entropy grow with diversity; self-BLEU, compression
ratio and ROUGE-L homogenisation grow with sameness.
"""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from collections.abc import Sequence
from itertools import combinations

_WORD = re.compile(r"\w+", re.UNICODE)
NAN = float("nan")


def words(text: str) -> list[str]:
    """Lower-cased word tokens: 'Hello, world!' -> ['hello', 'world']."""
    return _WORD.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct n-grams over all n-grams, pooled over the answers. Higher = more diverse."""
    pooled = [g for t in texts for g in ngrams(words(t), n)]
    return len(set(pooled)) / len(pooled) if pooled else NAN


def ngram_entropy(texts: Sequence[str], n: int = 2) -> float:
    """Shannon entropy (bits) of the pooled n-gram distribution. Higher = more diverse."""
    counts = Counter(g for t in texts for g in ngrams(words(t), n))
    total = sum(counts.values())
    if not total:
        return NAN
    return -sum(c / total * math.log2(c / total) for c in counts.values())


def compression_ratio(texts: Sequence[str]) -> float:
    """Bytes of the answers joined by newlines over their zlib-compressed size (level 9).

    Repeated text compresses well, so higher = more repetitive = less diverse.
    """
    raw = "\n".join(texts).encode("utf-8")
    return len(raw) / len(zlib.compress(raw, 9)) if raw else NAN


def bleu(hypothesis: Sequence[str], references: Sequence[Sequence[str]], max_n: int = 4) -> float:
    """Sentence BLEU of one tokenised hypothesis against tokenised references.

    Clipped n-gram precisions for n = 1..max_n, with add-one smoothing for n > 1
    (Lin and Och, 2004) so that one missing 4-gram does not zero the score; their
    geometric mean times the brevity penalty exp(1 - r/c) when the hypothesis (length c)
    is shorter than the reference closest in length (r).
    """
    if not hypothesis or not references:
        return 0.0
    log_total = 0.0
    for n in range(1, max_n + 1):
        counts = Counter(ngrams(hypothesis, n))
        most = Counter()
        for ref in references:
            for gram, c in Counter(ngrams(ref, n)).items():
                most[gram] = max(most[gram], c)
        matched = sum(min(c, most[gram]) for gram, c in counts.items())
        total = sum(counts.values())
        if n > 1:
            matched, total = matched + 1, total + 1
        if matched == 0:
            return 0.0
        log_total += math.log(matched / total) / max_n
    c = len(hypothesis)
    r = min((len(ref) for ref in references), key=lambda length: (abs(length - c), length))
    penalty = 1.0 if c >= r else math.exp(1 - r / c)
    return penalty * math.exp(log_total)


def self_bleu(texts: Sequence[str]) -> float:
    """Mean BLEU-4 of each answer against the other answers. Lower = more diverse."""
    tokens = [words(t) for t in texts]
    tokens = [t for t in tokens if t]
    if len(tokens) < 2:
        return NAN
    scores = [bleu(h, tokens[:i] + tokens[i + 1 :]) for i, h in enumerate(tokens)]
    return sum(scores) / len(scores)


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists.

    Bit-parallel (Hyyro, 2004): bit i of `row` is 0 where the LCS grows at b[i]; one
    integer addition per token of `a`, so long answers stay cheap in pure Python.
    """
    if not a or not b:
        return 0
    masks: dict[str, int] = {}
    for i, token in enumerate(b):
        masks[token] = masks.get(token, 0) | (1 << i)
    full = (1 << len(b)) - 1
    row = full
    for token in a:
        matches = row & masks.get(token, 0)
        row = ((row + matches) | (row - matches)) & full
    return len(b) - bin(row).count("1")


def rouge_l(a: Sequence[str], b: Sequence[str]) -> float:
    """ROUGE-L F1 of two token lists: harmonic mean of LCS/len(a) and LCS/len(b)."""
    if not a or not b:
        return 0.0
    lcs = lcs_length(a, b)
    return 2 * lcs / (len(a) + len(b))


def rouge_l_homogenisation(texts: Sequence[str]) -> float:
    """Mean ROUGE-L F1 over all pairs of answers. Lower = more diverse."""
    tokens = [words(t) for t in texts]
    pairs = list(combinations(tokens, 2))
    return sum(rouge_l(a, b) for a, b in pairs) / len(pairs) if pairs else NAN

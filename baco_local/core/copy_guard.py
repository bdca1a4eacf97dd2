"""Keep an in-context partner from copying its own preamble.

The in-context aligned partner is a base model shown example exchanges; a small one
copies them: asked for a bakery name, it may give the preamble's example list word for
word. A CopyGuard knows every span of n tokens of the example answers; before each
draw from that partner, the tokens that would complete such a span after the answer's
last n-1 tokens are taken out of the candidates. Shorter echoes (a list marker, "Here
are") stay possible; a copied run of n tokens does not.

Pure Python: the example answers come in as token lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

DEFAULT_SPAN = 6  # tokens: about five words


class CopyGuard:
    """The spans of `span` tokens found in `texts` (token lists), looked up by their
    first span-1 tokens."""

    def __init__(self, texts: Iterable[Sequence[int]], span: int = DEFAULT_SPAN):
        if span < 2:
            raise ValueError("a copy guard needs spans of 2 tokens or more")
        self.span = span
        self._next: dict[tuple[int, ...], set[int]] = {}
        for tokens in texts:
            tokens = list(tokens)
            for end in range(span - 1, len(tokens)):
                key = tuple(tokens[end - span + 1 : end])
                self._next.setdefault(key, set()).add(tokens[end])

    def banned(self, answer: Sequence[int]) -> set[int]:
        """The tokens that would make the answer's last `span` tokens a copied span."""
        if len(answer) < self.span - 1:
            return set()
        tail = tuple(answer)[len(answer) - self.span + 1 :]  # answer may be a deque
        return self._next.get(tail, set())

    def __len__(self) -> int:
        return sum(len(v) for v in self._next.values())

"""What one answer's rule may ask the batched loop for, and what each request reads.

A rule (`token_rule`, `word_rule`, `speculative_rule`) is a generator that yields these
and is sent the reply; the loop (`batch_loop`) answers all answers' requests of a kind
at once, through one handler per kind. A new kind of request is a class here and one
entry in the loop's handler table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from ..core.routers import ALIGNED, BASE, MIX


class Measure(NamedTuple):
    """The base model's top-1 id, top-1 probability and entropy at this answer's step."""

    sources = (BASE,)
    every_row = False


class Draw(NamedTuple):
    """A token from `source`'s logits (BASE, ALIGNED, or MIX for the ensemble)."""

    source: str
    u: float
    recent: Sequence[int] = ()

    @property
    def sources(self) -> tuple[str, ...]:
        return (BASE, ALIGNED) if self.source == MIX else (self.source,)

    every_row = False


class Propose(NamedTuple):
    """`source`'s processed next-token distribution (a `Dist`: after the repetition penalty
    on `recent`, the copy guard, temperature and the filters), to draft from."""

    source: str
    recent: Sequence[int] = ()

    @property
    def sources(self) -> tuple[str, ...]:
        return (self.source,)

    every_row = False


class Score(NamedTuple):
    """The base model's logits at the answer's last `rows` positions (a drafted run: after
    each of its pending tokens and the token before them): a `ScoredRun`."""

    rows: int
    sources = (BASE,)
    every_row = True


class Want(NamedTuple):
    """Decode these models for me at the next decode (a hint; answered with None)."""

    sources: tuple[str, ...]


def sources_of(request) -> tuple[str, ...]:
    """The models whose logits a request reads."""
    return request.sources


class ScoredRun:
    """The reply to `Score`: what the base model says at each position of a drafted run.

    rows: (m, n_vocab) float32 logits, row j at the run's position j (own memory).
    top_ids, top1, entropy: (m,) arrays, the base model's signals at each row.
    distribution(j, recent): the base model's processed distribution at row j (a Dist),
        with the repetition penalty on `recent`; computed only when asked for.
    """

    def __init__(self, rows, top_ids, top1, entropy, distribution):
        self.rows = rows
        self.top_ids, self.top1, self.entropy = top_ids, top1, entropy
        self._distribution = distribution

    def __len__(self) -> int:
        return len(self.rows)

    def distribution(self, j: int, recent: Sequence[int]):
        return self._distribution(self.rows[j], recent)

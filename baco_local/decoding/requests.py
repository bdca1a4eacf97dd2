"""What one answer's rule may ask the batched loop for, and what each request reads.

A rule (`token_rule`, `word_rule`) is a generator that yields these and is sent the
reply; the loop (`batch_loop`) answers all answers' requests of a kind at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from ..core.routers import ALIGNED, BASE, MIX


class Measure(NamedTuple):
    """The base model's top-1 id, top-1 probability and entropy at this answer's step."""


class Draw(NamedTuple):
    """A token from `source`'s logits (BASE, ALIGNED, or MIX for the ensemble)."""

    source: str
    u: float
    recent: Sequence[int] = ()


class Want(NamedTuple):
    """Decode these models for me at the next decode (a hint; answered with None)."""

    sources: tuple[str, ...]


def sources_of(request) -> tuple[str, ...]:
    """The models whose logits a request reads."""
    if isinstance(request, Measure):
        return (BASE,)
    return (BASE, ALIGNED) if request.source == MIX else (request.source,)

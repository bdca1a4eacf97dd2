"""Named samplers: the sampling fields each one sets. Used by `baco eval`'s
router+sampler methods (ROUTER+min-p) and by a catalog pair's recommended sampler.

min-p: keep tokens at least 0.1 times as likely as the most likely one, with no top-k
and no top-p, so that a high temperature flattens the distribution without letting the
long tail in (Nguyen et al., 2024). Temperature is set separately.
"""

from __future__ import annotations

SAMPLER_PRESETS: dict[str, dict] = {"min-p": {"min_p": 0.1, "top_p": 1.0, "top_k": 0}}


def sampler_changes(name: str | None, temperature: float | None) -> dict:
    """GenerationSettings fields for a named sampler (None: none) at a temperature."""
    changes = dict(SAMPLER_PRESETS[name]) if name else {}
    if temperature is not None:
        changes["temperature"] = temperature
    return changes

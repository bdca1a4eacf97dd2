"""Which rule an answer follows, from its pair and its settings.

- a pair of two vocabularies: `word_rule` (words pass between the models as text);
- one vocabulary, `speculative` "off", or the ensemble baseline (which mixes both
  models' distributions at every token, so nothing can be drafted): `token_rule`;
- "on": `speculative_rule`;
- "auto": `speculative_rule` where the pair's measured costs say that runs longer than
  one token pay on this host (`draft_plan.speculation_pays`), else `token_rule`.
"""

from __future__ import annotations

from ..core.settings import GenerationSettings
from ..pairs.loading import LoadedPair
from .draft_plan import DraftCosts, speculation_pays
from .speculative_rule import speculative_rule
from .token_rule import token_rule
from .word_rule import word_rule


def may_speculate(pair: LoadedPair, settings: GenerationSettings) -> bool:
    """True when the answer would draft speculatively if it pays (or is asked to)."""
    return not pair.word_level and settings.speculative != "off" and settings.router != "ensemble"


def rule_for(pair: LoadedPair, settings: GenerationSettings, costs: DraftCosts | None):
    """The rule for one answer; costs: the pair's measured draft costs (for "auto")."""
    if pair.word_level:
        return word_rule
    if not may_speculate(pair, settings):
        return token_rule
    if settings.speculative == "on" or (costs is not None and speculation_pays(costs)):
        return speculative_rule
    return token_rule

"""Which rule an answer follows, from its pair and its settings.

- `speculative` "off", or the ensemble baseline (which mixes both models'
  distributions at every token, so nothing can be drafted): `token_rule` on a pair
  of one vocabulary, `word_rule` on a pair of two (words pass between them as text);
- "on": `speculative_rule`, or `speculative_word_rule` on a pair of two vocabularies;
- "auto": on a pair of one vocabulary, the speculative rule where the pair's measured
  costs say that runs longer than one pay on this host (`draft_plan.speculation_pays`),
  else the plain one; on a pair of two vocabularies, the plain word rule. Measured on
  the default pair (2-core AMD host, 64 tokens): speculative words ran 0.98-1.06x the
  word rule for one answer and 0.77-0.88x for 4 or 8 answers in a batch, because the
  base model's logits on every drafted row cost more than the decodes they save.
"""

from __future__ import annotations

from ..core.settings import GenerationSettings
from ..pairs.loading import LoadedPair
from .draft_plan import DraftCosts, speculation_pays
from .speculative_rule import speculative_rule
from .speculative_word_rule import speculative_word_rule
from .token_rule import token_rule
from .word_rule import word_rule


def may_speculate(pair: LoadedPair, settings: GenerationSettings) -> bool:
    """True when the answer would draft speculatively if it pays (or is asked to): not
    the ensemble (it mixes both models at every token), nor, across vocabularies, the
    aligned router (the base never reads)."""
    if settings.speculative == "off" or settings.router == "ensemble":
        return False
    return not (pair.word_level and settings.router == "aligned")


def rule_for(pair: LoadedPair, settings: GenerationSettings, costs: DraftCosts | None):
    """The rule for one answer; costs: the pair's measured draft costs (for "auto")."""
    if pair.word_level:
        plain, speculative = word_rule, speculative_word_rule
    else:
        plain, speculative = token_rule, speculative_rule
    if not may_speculate(pair, settings):
        return plain
    if settings.speculative == "on":
        return speculative
    if not pair.word_level and costs is not None and speculation_pays(costs):
        return speculative
    return plain

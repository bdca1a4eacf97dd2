"""Speculative collaboration in numpy: which distribution a step follows, and the test
that keeps a drafted token or replaces it, so that the answer follows that distribution.

The aligned model drafts a run of tokens; the base model then reads the run in one
batch. At each position the loop knows both models' processed distributions (after
temperature, top-k, min-p, top-p, the repetition penalty and the copy guard). The
collaboration rule (`token_rule`) is two draws: the owner of the current word draws
first, and only if its token would start a word does the router's choice draw again,
keeping the owner's token when that second draw would continue the word. `step_target`
writes that rule as one distribution over tokens, with the share of each token that
the rule credits to the router's choice. `keep_or_replace` is speculative sampling
(Leviathan et al. 2023; Chen et al. 2023): a draft x from q is kept with probability
min(1, p(x)/q(x)); otherwise a token is drawn from the normalised residual
max(0, p - q). The token that results is distributed exactly as p.

Distributions are sparse (`distribution.Dist`): the few tokens a sampler keeps. Pure
numpy; no model here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from .distribution import Dist, make_dist, pick

# Drafts per run at most: also the rows per answer that the base model's context keeps
# room for in one decode's output.
MAX_DRAFT_LENGTH = 8


class StepTarget(NamedTuple):
    """What one step of the collaboration rule writes: `dist`, and for each of its ids
    the probability that the token is credited to the router's choice (`decision_share`,
    aligned with dist.ids; the rest is credited to the word's owner)."""

    dist: Dist
    decision_share: np.ndarray


def step_target(
    owner: Dist | None, decision: Dist, same: bool, starts_word: Callable[[int], bool]
) -> StepTarget:
    """The distribution of one step of the collaboration rule.

    owner: the processed distribution of the model that wrote the current word (None
        at the answer's first routed step: then the router's choice draws alone).
    decision: the processed distribution of the model the router chose.
    same: the router chose the owner (its draw stands, wherever it goes).
    starts_word: whether a token begins a new word.

    With o the owner's distribution, d the choice's and S the tokens that start a word:
        T(t) = o(t) [t not in S] + o(t) [t in S] d(not S) + o(S) d(t) [t in S]
    The first two terms are the owner's token (a continuation; or a word start whose
    switch waits, because the choice's draw would continue the word); the third is
    the choice's draw.
    """
    if owner is None or same:
        chosen = decision if owner is None else owner
        return StepTarget(chosen, np.ones(len(chosen.ids)))
    o_starts = np.array([starts_word(int(t)) for t in owner.ids], dtype=bool)
    d_starts = np.array([starts_word(int(t)) for t in decision.ids], dtype=bool)
    o_start_mass = float(owner.probs[o_starts].sum())
    d_continue_mass = float(decision.probs[~d_starts].sum())
    from_owner = np.where(o_starts, owner.probs * d_continue_mass, owner.probs)
    from_decision = decision.probs[d_starts] * o_start_mass
    ids = np.concatenate([owner.ids, decision.ids[d_starts]])
    unique, inverse = np.unique(ids, return_inverse=True)
    owner_part = np.bincount(
        inverse, np.concatenate([from_owner, np.zeros(len(from_decision))]), len(unique)
    )
    decision_part = np.bincount(
        inverse, np.concatenate([np.zeros(len(from_owner)), from_decision]), len(unique)
    )
    total = owner_part + decision_part
    keep = total > 0
    ids, decision_part, total = unique[keep], decision_part[keep], total[keep]
    order = np.lexsort((ids, -total))
    dist = Dist(ids[order], total[order] / total.sum())
    return StepTarget(dist, (decision_part / total)[order])


def _sum_by_id(ids: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique ids (ascending) and the sum of the values given for each."""
    unique, inverse = np.unique(ids, return_inverse=True)
    return unique, np.bincount(inverse, weights=values, minlength=len(unique))


def keep_or_replace(
    target: Dist, draft: Dist, token: int, u_keep: float, u_residual: float
) -> tuple[int, bool]:
    """Speculative sampling: (the step's token, whether it is the draft).

    token: the draft, drawn from `draft`. It is kept with probability
    min(1, target(token) / draft(token)) (kept when u_keep < that ratio); otherwise the
    token is drawn with u_residual from max(0, target - draft), normalised, which
    never holds the draft. Over draws of the draft and both uniforms, the result is
    distributed as `target`.
    """
    p, q = target.prob(token), draft.prob(token)
    if q <= 0:
        raise ValueError(f"token {token} is not in the draft distribution it was drawn from")
    if u_keep * q < p:
        return token, True
    residual = residual_dist(target, draft)
    if residual is None:  # target == draft up to rounding: nothing to correct
        return token, True
    return pick(residual, u_residual), False


def residual_dist(target: Dist, draft: Dist) -> Dist | None:
    """max(0, target - draft), normalised; None when it has no mass."""
    ids = np.concatenate([target.ids, draft.ids])
    values = np.concatenate([target.probs, -draft.probs])
    ids, diff = _sum_by_id(ids, values)
    positive = diff > 1e-12
    if not positive.any():
        return None
    return make_dist(ids[positive], diff[positive])


def credit_decision(target: StepTarget, token: int, u_credit: float) -> bool:
    """Whether the step's token is credited to the router's choice (else to the owner)."""
    where = np.flatnonzero(target.dist.ids == token)
    share = float(target.decision_share[where[0]]) if len(where) else 1.0
    return u_credit < share

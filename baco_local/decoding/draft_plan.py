"""How long a run the aligned model drafts before the base model reads it.

A run of k drafts costs k decodes of the aligned model and one decode of k rows by the
base; with each draft kept with probability a (the answer's acceptance so far), it
yields 1 + a + ... + a^(k-1) tokens: the kept drafts, and the token that replaced the
first one not kept. The planner picks the k in 1..max_length with the most tokens per
second under the pair's measured costs (`DraftCosts`, measured on this host by
`LoadedPair.draft_costs`): longer runs while drafts are kept, shorter when they are not.
Where even two drafts do not pay, every run is one token, which costs what the loop
without speculation costs: both models read each token.

Acceptance is tracked per answer, from the kept and replaced drafts alone, so a
seeded answer makes the same choices every time on a host whose costs are stored.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..core.speculative import MAX_DRAFT_LENGTH as MAX_LENGTH

PRIOR_ACCEPTANCE = 0.8  # before an answer has kept or replaced any draft
SMOOTHING = 1 / 16  # weight of the newest draft in the running acceptance


@dataclass(frozen=True)
class DraftCosts:
    """Seconds one decode takes on this host: the aligned model reading one token, and
    the base model reading k tokens with logits on every row (score[k - 1]). together:
    one decode holding a token of each model, where both share a context (else None)."""

    draft: float
    score: tuple[float, ...]
    together: float | None = None

    def __post_init__(self) -> None:
        if not (self.draft > 0 and self.score and all(s > 0 for s in self.score)):
            raise ValueError("draft costs must be positive seconds")
        if self.together is not None and not self.together > 0:
            raise ValueError("draft costs must be positive seconds")

    def run_seconds(self, k: int) -> float:
        """What a run of k drafts costs: k aligned decodes and one base decode of k rows
        (a run of one: both models read its token in one step, in one decode where they
        share a context)."""
        if k == 1 and self.together is not None:
            return self.together
        return k * self.draft + self.score[min(k, len(self.score)) - 1]

    def to_dict(self) -> dict:
        return {"draft": self.draft, "score": list(self.score), "together": self.together}

    @classmethod
    def from_dict(cls, data: dict) -> DraftCosts:
        together = data.get("together")
        return cls(
            float(data["draft"]),
            tuple(float(s) for s in data["score"]),
            None if together is None else float(together),
        )


# Before anything is measured: the base reads k rows for 1 + 0.2 (k - 1) of one row's
# cost, and both models cost alike. Used only where no measurement is at hand.
ASSUMED_COSTS = DraftCosts(1.0, tuple(1 + 0.2 * k for k in range(MAX_LENGTH)))


def expected_tokens(acceptance: float, k: int) -> float:
    """Tokens a run of k drafts yields when each is kept with probability `acceptance`."""
    return sum(acceptance**i for i in range(k))


def best_length(costs: DraftCosts, acceptance: float, max_length: int = MAX_LENGTH) -> int:
    """The run length with the most expected tokens per second."""
    longest = max(1, min(max_length, len(costs.score)))
    rates = [expected_tokens(acceptance, k) / costs.run_seconds(k) for k in range(1, longest + 1)]
    return 1 + max(range(len(rates)), key=rates.__getitem__)


def speculation_pays(costs: DraftCosts, acceptance: float = PRIOR_ACCEPTANCE) -> bool:
    """True when runs longer than one token are expected to be faster here."""
    return best_length(costs, acceptance) > 1


class DraftPlanner:
    """Chooses each answer's next run length, and tracks its acceptance."""

    def __init__(self, costs: DraftCosts | None = None, max_length: int = MAX_LENGTH):
        self.costs = costs or ASSUMED_COSTS
        self.max_length = max_length
        self.stats = DraftStats()
        # Answers decoding together now (the loop sets it each step). In a batch every
        # decode already serves every answer, so what a long run saves (decodes) is
        # shared, while what it costs (logits on every drafted row, rows thrown away
        # after a rejection) is not: measured on the default pair, runs as long as one
        # answer's costs call for made 4 and 8 answers 0.77x as fast as no speculation.
        # So in a batch each run is one draft, which costs what the plain rule costs.
        # Draws are indexed by position: the run lengths do not change a seeded answer.
        self.batch = 1

    def length(self, answer) -> int:
        if self.batch > 1:
            return 1
        return best_length(self.costs, self.acceptance(answer), self.max_length)

    @staticmethod
    def acceptance(answer) -> float:
        return getattr(answer, "acceptance", PRIOR_ACCEPTANCE)

    def record(self, answer, kept: bool, base_step: bool = False) -> None:
        """One drafted position was walked: its draft kept or replaced. base_step: the
        rule called for the base model there (its draw, or its word's)."""
        current = self.acceptance(answer)
        answer.acceptance = current + SMOOTHING * (float(kept) - current)
        self.stats.walked += 1
        self.stats.kept += kept
        self.stats.base_steps += base_step
        self.stats.base_kept += base_step and kept

    def record_run(self, drafted: int, written: int) -> None:
        """A run ended: `drafted` drafts, of which `written` became the answer's (the kept
        ones and the one that replaced a draft)."""
        self.stats.runs += 1
        self.stats.drafted += drafted
        self.stats.written += written


@dataclass
class DraftStats:
    """What the speculative loop did, over every answer of a loop (for the bench)."""

    runs: int = 0
    drafted: int = 0  # drafts made (tokens, or words across vocabularies)
    written: int = 0  # of them, or in their place, written into answers
    walked: int = 0  # positions the rule decided on
    kept: int = 0  # ... whose draft stood
    base_steps: int = 0  # positions where the rule called for the base model
    base_kept: int = 0  # ... whose draft stood all the same

    def minus(self, before: DraftStats) -> DraftStats:
        """What happened since `before` (a copy taken then)."""
        return DraftStats(
            *(getattr(self, f.name) - getattr(before, f.name) for f in fields(DraftStats))
        )

    def to_dict(self) -> dict:
        return {
            "runs": self.runs,
            "mean_run": round(self.written / self.runs, 3) if self.runs else None,
            "mean_drafted": round(self.drafted / self.runs, 3) if self.runs else None,
            "acceptance": round(self.kept / self.walked, 4) if self.walked else None,
            "base_steps": self.base_steps,
            "base_acceptance": (
                round(self.base_kept / self.base_steps, 4) if self.base_steps else None
            ),
        }

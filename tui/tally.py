"""Compare-mode votes: who won, counted. Pure functions over stored vote choices."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

COLLABORATION = "collaboration"
ALIGNED = "aligned"
TIE = "tie"
CHOICES = (COLLABORATION, ALIGNED, TIE)


@dataclass(frozen=True)
class Tally:
    """Votes on one question (quality or originality)."""

    votes: int
    collaboration: int
    aligned: int
    ties: int

    @property
    def collaboration_rate(self) -> float | None:
        """Share of the votes the collaboration won outright; None before any vote."""
        return self.collaboration / self.votes if self.votes else None

    @property
    def aligned_rate(self) -> float | None:
        return self.aligned / self.votes if self.votes else None

    def summary(self) -> str:
        if not self.votes:
            return "no votes yet"
        return (
            f"collaboration {self.collaboration_rate:.0%} · aligned {self.aligned_rate:.0%} · "
            f"ties {self.ties} (of {self.votes})"
        )


def tally(choices: Iterable[str]) -> Tally:
    """Count choices, each one of CHOICES."""
    counted = {choice: 0 for choice in CHOICES}
    for choice in choices:
        if choice not in counted:
            raise ValueError(f"unknown vote {choice!r}; expected one of {', '.join(CHOICES)}")
        counted[choice] += 1
    return Tally(
        votes=sum(counted.values()),
        collaboration=counted[COLLABORATION],
        aligned=counted[ALIGNED],
        ties=counted[TIE],
    )

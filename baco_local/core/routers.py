"""Routers: at a word boundary, decide which model the next token is drawn from.

Every router reads only the *base* model's distribution (its top-1 probability, its
entropy, and the role of its top-1 token) plus, for `random`, one uniform draw that the
decode loop supplies. Reading the base alone is a choice, documented here: it keeps a
router a pure function of one distribution, and it lets the loop skip evaluating the
aligned model on steps that go to the base.

`decide` has no side effects (decide, then the loop accepts the token), so a seeded
replay is exact. Nothing here imports llama_cpp.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import SettingsError, unknown_name_error
from .token_roles import Role

BASE = "base"
ALIGNED = "aligned"
MIX = "mix"  # not a model: the ensemble baseline draws from a mixture of both
SOURCES = (BASE, ALIGNED)


@dataclass(frozen=True)
class Signals:
    """What a router may read at one step.

    top1_prob: max_y P_base(y), in [0, 1].
    entropy: H(P_base) in nats, in [0, ln n_vocab].
    top1_role: role of the base model's most likely next token.
    uniform: a draw from U[0, 1), consumed only by random routers.
    """

    top1_prob: float
    entropy: float
    top1_role: Role
    uniform: float


Rule = Callable[[Signals, float], str]


@dataclass(frozen=True)
class RouterSpec:
    """A named router: its rule, what gamma means for it, and gamma's default and range."""

    name: str
    description: str
    rule: Rule
    gamma_meaning: str | None = None
    gamma_default: float | None = None
    gamma_range: tuple[float, float] | None = None
    reads_base: bool = True  # False: the decision needs no base logits at all

    @property
    def has_gamma(self) -> bool:
        return self.gamma_default is not None

    def check_gamma(self, gamma: float | None) -> float | None:
        """Return the gamma to use (the default when None); raise if out of range."""
        if not self.has_gamma:
            if gamma is not None:
                raise SettingsError(
                    f"Router {self.name!r} has no gamma (got {gamma}).",
                    "drop --gamma, or pick a router with a dial: "
                    + ", ".join(s.name for s in ROUTERS.values() if s.has_gamma),
                )
            return None
        if gamma is None:
            return self.gamma_default
        low, high = self.gamma_range
        if not (
            isinstance(gamma, (int, float))
            and not isinstance(gamma, bool)
            and math.isfinite(gamma)
            and low <= gamma <= high
        ):
            raise SettingsError(
                f"gamma {gamma!r} is "
                + (
                    "not a number"
                    if not_a_number(gamma)
                    else f"out of range for router {self.name!r}"
                )
                + ".",
                f"use a value in [{low:g}, {high:g}] ({self.gamma_meaning})",
            )
        return float(gamma)

    def decide(self, signals: Signals, gamma: float | None) -> str:
        """Return BASE or ALIGNED for the next word. Pure."""
        return self.rule(signals, gamma)


def not_a_number(value) -> bool:
    """True for a value of the wrong type for a numeric setting (text, a flag, None), as
    against a number out of its range."""
    return isinstance(value, bool) or not isinstance(value, numbers.Real)


# The rules. Content rules first, then the logit rule, as in the paper's combined routers.


def _always(source: str) -> Rule:
    return lambda s, g: source


def _p(s: Signals, g: float) -> str:
    return BASE if s.top1_prob < g else ALIGNED


def _h(s: Signals, g: float) -> str:
    return BASE if s.entropy > g else ALIGNED


def _punc(s: Signals, g: float | None) -> str:
    return ALIGNED if s.top1_role == Role.PUNCT else BASE


def _fc(s: Signals, g: float | None) -> str:
    return BASE if s.top1_role == Role.CONTENT else ALIGNED


def _content_then(content_rule: Rule, logit_rule: Rule) -> Rule:
    def rule(s: Signals, g: float) -> str:
        return ALIGNED if content_rule(s, g) == ALIGNED else logit_rule(s, g)

    return rule


def _random(s: Signals, g: float) -> str:
    return BASE if s.uniform < g else ALIGNED


def _nudging(s: Signals, g: float) -> str:
    return ALIGNED if s.top1_prob < g else BASE


def _mix(s: Signals, g: float) -> str:
    return MIX


# gamma ranges. Entropy is in nats; its maximum is ln(n_vocab) (12.5 for 262,144 tokens).
_PROB = (0.0, 1.0)
_ENTROPY = (0.0, 16.0)
_P_MEANING = "base when the base top-1 probability is below gamma; higher = more base"
_H_MEANING = "base when the base entropy (nats) is above gamma; lower = more base"

ROUTERS: dict[str, RouterSpec] = {
    spec.name: spec
    for spec in (
        RouterSpec("aligned", "aligned model only", _always(ALIGNED), reads_base=False),
        RouterSpec("base", "base model only", _always(BASE), reads_base=False),
        RouterSpec(
            "p",
            "base when the base model is unsure (top-1 probability < gamma)",
            _p,
            _P_MEANING,
            0.5,
            _PROB,
        ),
        RouterSpec(
            "h",
            "base when the base model is unsure (entropy > gamma)",
            _h,
            _H_MEANING,
            1.5,
            _ENTROPY,
        ),
        RouterSpec(
            "punc", "aligned for punctuation and formatting, base for everything else", _punc
        ),
        RouterSpec("fc", "aligned for function words and punctuation, base for content words", _fc),
        RouterSpec(
            "p-punc",
            "punctuation to aligned, then base when top-1 probability < gamma",
            _content_then(_punc, _p),
            _P_MEANING,
            0.5,
            _PROB,
        ),
        RouterSpec(
            "h-punc",
            "punctuation to aligned, then base when entropy > gamma",
            _content_then(_punc, _h),
            _H_MEANING,
            1.5,
            _ENTROPY,
        ),
        RouterSpec(
            "p-fc",
            "function words and punctuation to aligned, then base when top-1 < gamma",
            _content_then(_fc, _p),
            _P_MEANING,
            0.5,
            _PROB,
        ),
        RouterSpec(
            "random",
            "base with probability gamma, at random (a reference point)",
            _random,
            "probability of routing a word to the base",
            0.3,
            _PROB,
            reads_base=False,
        ),
        RouterSpec(
            "nudging",
            "base leads; aligned supplies the word when base top-1 < gamma (Fei et al.)",
            _nudging,
            "aligned when the base top-1 probability is below gamma; higher = more aligned",
            0.3,
            _PROB,
        ),
        RouterSpec(
            "ensemble",
            "a baseline, not routing: every token from gamma*P_base + (1-gamma)*P_aligned",
            _mix,
            "weight of the base model in the mixture",
            0.5,
            _PROB,
            reads_base=False,
        ),
    )
}

DEFAULT_ROUTER = "p-punc"


def get_router(name: str) -> RouterSpec:
    """Look up a router by its command-line name; unknown names get suggestions."""
    try:
        return ROUTERS[name]
    except KeyError:
        raise unknown_name_error("router", name, ROUTERS, "baco routers") from None

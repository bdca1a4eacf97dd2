"""The numeric part of one generation: seeded draws and the base model's signals.

Pure numpy over logits rows handed in by the decode loop. Two random streams come
from one seed: one for sampling, one for the router, so that a router that consumes
draws (random) never shifts the sampler's draws, and a seed replays exactly.
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import NamedTuple

import numpy as np

from .copy_guard import CopyGuard
from .routers import ALIGNED, BASE, RouterSpec, Signals
from .sampling import Mixture, Sampler, penalise
from .settings import GenerationSettings
from .token_roles import Role, TokenRoles
from .uncertainty import UncertaintyMeter


class Drawer:
    """Draws tokens and measures signals for one generation (n_vocab tokens).

    seconds: time spent here, for the bench's overhead figures.
    """

    def __init__(
        self,
        n_vocab: int,
        settings: GenerationSettings,
        router: RouterSpec,
        guard: CopyGuard | None = None,
    ):
        self.n_vocab = n_vocab
        self.router = router
        self.guard = guard  # keeps an in-context partner's draws from copying its examples
        self._tail: deque[int] = deque(maxlen=guard.span - 1 if guard else 1)
        self._sampler = Sampler(n_vocab, settings)
        self._meter = UncertaintyMeter(n_vocab)
        self._mixture = None
        if router.name == "ensemble":
            self._mixture = Mixture(n_vocab, settings.gamma, settings.temperature)
            # the mixture is already at the sampling temperature: pick at 1 (or greedily);
            # the repetition penalty applies to each model's logits before mixing, as it
            # does to a routed model's, not to the mixture's log-probabilities
            at_one = settings.with_changes(
                temperature=0 if settings.temperature == 0 else 1, repeat_penalty=1.0
            )
            self._mixture_sampler = Sampler(n_vocab, at_one)
            self._penalty = settings.repeat_penalty
            self._penalised_rows = tuple(np.empty(n_vocab, dtype=np.float32) for _ in range(2))
        self._recent: deque[int] = deque(maxlen=settings.repeat_last_n or 1)
        self._penalise = settings.repeat_last_n > 0 and settings.repeat_penalty != 1
        self._rng_sample, self._rng_route = random_streams(settings.seed)
        self.seconds = 0.0

    def draw(self, logits: np.ndarray, guarded: bool = False) -> int:
        """One token from a model's logits row (shape (>= n_vocab,), float32, read only).
        guarded: the row is the guarded partner's, so no copied span may be completed."""
        started = time.perf_counter()
        u = float(self._rng_sample.random())
        token = self._sampler.draw(
            logits[: self.n_vocab], u, self._recent_tokens(), self._banned(guarded)
        )
        self.seconds += time.perf_counter() - started
        return token

    def draw_mixture(self, logits_base: np.ndarray, logits_aligned: np.ndarray) -> int:
        """One token from the ensemble baseline's mixture of both rows."""
        started = time.perf_counter()
        n, recent = self.n_vocab, self._recent_tokens()
        rows = [
            penalise(logits[:n], recent, self._penalty, out)
            for logits, out in zip((logits_base, logits_aligned), self._penalised_rows, strict=True)
        ]
        log_probs = self._mixture.log_probs(*rows)
        u = float(self._rng_sample.random())
        token = self._mixture_sampler.draw(log_probs, u, banned=self._banned(True))
        self.seconds += time.perf_counter() - started
        return token

    def accept(self, token: int) -> None:
        """Record a token of the answer (the repetition penalty looks back at these)."""
        self._recent.append(token)
        self._tail.append(token)

    def _banned(self, guarded: bool) -> set[int]:
        return self.guard.banned(self._tail) if guarded and self.guard else set()

    def _recent_tokens(self) -> deque[int] | tuple:
        return self._recent if self._penalise else ()

    def credit(self, token: int) -> str:
        """The model a mixture token is credited to: the one with the larger share."""
        return BASE if self._mixture.base_share(token) >= 0.5 else ALIGNED

    def measure(self, logits_base: np.ndarray, roles: TokenRoles) -> tuple[float, float, Role]:
        """(top-1 probability, entropy, role of the top-1 token) of the base row. Pure: the
        loop may measure before it knows whether the step routes."""
        started = time.perf_counter()
        top_id, top1, entropy = self._meter.measure(logits_base[: self.n_vocab])
        role = roles.role(top_id)
        self.seconds += time.perf_counter() - started
        return top1, entropy, role

    def signals(self, measured: tuple[float, float, Role] | None) -> Signals:
        """What the router reads: a measurement (None for routers that read no base) and
        one draw from the router's random stream."""
        return router_signals(measured, float(self._rng_route.random()))


class PositionDraws(NamedTuple):
    """The uniform draws of one position of an answer, for the speculative loop."""

    draft: float  # the aligned model's draft token
    keep: float  # keep the draft, or not
    residual: float  # the correction, when the draft is not kept
    credit: float  # which model a token is credited to, when both could have written it
    route: float  # the router's own draw (the `random` router)


def position_draws(seed: int, position: int) -> PositionDraws:
    """The draws of answer position `position` (0 = the first new token) under `seed`.

    They depend on the seed and the position only, not on how the loop got there: a
    draft cut short and drafted again at the same position draws the same, however
    long the runs were, so a seeded answer does not depend on the draft lengths.
    """
    state = np.random.SeedSequence((seed, position)).generate_state(5, np.uint64)
    return PositionDraws(*((state >> np.uint64(11)) * (1.0 / 2**53)).tolist())


def random_streams(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Two independent generators from one seed: (sampling, routing)."""
    sample_seed, route_seed = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(sample_seed), np.random.default_rng(route_seed)


def router_signals(measured: tuple[float, float, Role] | None, uniform: float) -> Signals:
    """What a router reads: a measurement of the base (None for routers that read none,
    then NaN) and one uniform draw."""
    if measured is None:
        return Signals(math.nan, math.nan, Role.CONTENT, uniform)
    return Signals(*measured, uniform)

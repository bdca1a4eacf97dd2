"""The straightforward decode loop, kept as a yardstick for the fast one.

Both models read every token and are evaluated at every step, one after the other,
each with every thread: no prefetch, no laziness, no second thread. It makes the same
decisions with the same random draws as `engine.Generation`, so for one seed both
loops must produce the same tokens from the same models (tests check this), and the
bench reports how much faster the fast loop is.
"""

from __future__ import annotations

import time

import numpy as np

from .pair import LoadedPair
from .prompt_formats import NAMED_FORMATS, Message
from .routers import ALIGNED, BASE, MIX, Signals, get_router
from .sampling import Mixture, Sampler
from .settings import GenerationSettings
from .token_roles import TokenRoles
from .uncertainty import UncertaintyMeter


def reference_tokens(
    pair: LoadedPair,
    messages: tuple[Message, ...],
    settings: GenerationSettings,
    roles: TokenRoles,
    *,
    raw: bool = False,
    timestamps: list[float] | None = None,
) -> list[tuple[int, str]]:
    """Generate max_tokens tokens (no stop conditions); return (token id, source) pairs.

    settings.seed must be set. Sources are "base" or "aligned" (the ensemble's tokens
    are credited to the model with the larger share, as in the fast loop).
    timestamps: if given, gets time.perf_counter() as each token is chosen.
    """
    router = get_router(settings.router)
    n = pair.n_vocab
    streams = pair.streams
    sampler = Sampler(n, settings)
    meter = UncertaintyMeter(n)
    mixture = Mixture(n, settings.gamma, settings.temperature) if router.name == "ensemble" else None
    mix_sampler = Sampler(n, settings.with_changes(temperature=1 - (settings.temperature == 0)))
    sample_seed, route_seed = np.random.SeedSequence(settings.seed).spawn(2)
    rng_sample, rng_route = np.random.default_rng(sample_seed), np.random.default_rng(route_seed)

    for role in (BASE, ALIGNED):
        fmt = NAMED_FORMATS["raw"] if raw else pair.prompt_format(role)
        streams[role].start(pair.tokenize_prompt(role, fmt.render(messages)))
        streams[role].set_threads(pair.n_threads)
        streams[role].catch_up()

    def draw(source: str) -> int:
        if source == MIX:
            log_probs = mixture.log_probs(streams[BASE].logits()[:n], streams[ALIGNED].logits()[:n])
            return mix_sampler.draw(log_probs, float(rng_sample.random()))
        return sampler.draw(streams[source].logits()[:n], float(rng_sample.random()))

    out: list[tuple[int, str]] = []
    owner = None
    for _ in range(settings.max_tokens):
        candidate = draw(owner) if owner else None
        if candidate is not None and not roles.starts_word(candidate):
            token, source = candidate, owner
        else:
            uniform = float(rng_route.random())
            if router.reads_base:
                top_id, top1, entropy = meter.measure(streams[BASE].logits()[:n])
                signals = Signals(top1, entropy, roles.role(top_id), uniform)
            else:
                signals = Signals(float("nan"), float("nan"), roles.role(0), uniform)
            decision = router.decide(signals, settings.gamma)
            if decision == owner:
                token, source = candidate, owner
            else:
                token, source = draw(decision), decision
                if candidate is not None and not roles.starts_word(token):
                    token, source = candidate, owner
        owner = source
        credited = source
        if source == MIX:
            credited = BASE if mixture.base_share(token) >= 0.5 else ALIGNED
        out.append((token, credited))
        if timestamps is not None:
            timestamps.append(time.perf_counter())
        for role in (BASE, ALIGNED):
            streams[role].push(token)
            streams[role].catch_up()
    return out

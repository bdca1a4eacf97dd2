"""The straightforward decode loop, kept as a yardstick for the fast one.

Both models read every token and are evaluated at every step, one after the other,
each with every thread: no prefetch, no laziness, no second thread. It shares the numeric
kit (`Drawer`: samplers, signals, seeded draws) with the batched loop but not its
scheduling, so for one seed both loops must produce the same tokens from the same
models (tests check this), and the bench reports how much faster the fast loop is.
"""

from __future__ import annotations

import time

from ..core.drawing import Drawer
from ..core.routers import ALIGNED, BASE, MIX, get_router
from ..core.settings import GenerationSettings
from ..core.token_roles import TokenRoles
from ..pairs.loading import LoadedPair
from ..pairs.prompt_formats import Message


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
    streams = pair.streams
    drawer = Drawer(pair.n_vocab, settings, router, pair.copy_guards.get(ALIGNED))

    def catch_up_both() -> None:
        for role in (BASE, ALIGNED):
            streams[role].catch_up()

    for role in (BASE, ALIGNED):
        pair.start(role, pair.prepare(role, messages, raw=raw))
        streams[role].set_threads(pair.n_threads)
    catch_up_both()

    def draw(source: str) -> int:
        if source == MIX:
            return drawer.draw_mixture(streams[BASE].logits(), streams[ALIGNED].logits())
        return drawer.draw(streams[source].logits(), guarded=source == ALIGNED)

    out: list[tuple[int, str]] = []
    owner = None
    for _ in range(settings.max_tokens):
        leading = len(out) < settings.lead and router.name != BASE
        candidate = draw(owner) if owner and not leading else None
        if leading:
            token, source = draw(ALIGNED), ALIGNED
        elif candidate is not None and not roles.starts_word(candidate):
            token, source = candidate, owner
        else:
            measured = drawer.measure(streams[BASE].logits(), roles) if router.reads_base else None
            decision = router.decide(drawer.signals(measured), settings.gamma)
            if decision == owner:
                token, source = candidate, owner
            else:
                token, source = draw(decision), decision
                if candidate is not None and not roles.starts_word(token):
                    token, source = candidate, owner
        owner = source
        out.append((token, drawer.credit(token) if source == MIX else source))
        if timestamps is not None:
            timestamps.append(time.perf_counter())
        drawer.accept(token)
        for role in (BASE, ALIGNED):
            streams[role].push(token)
        catch_up_both()
    return out

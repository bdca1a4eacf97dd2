"""The diversity dial: cycling routers and moving gamma, as pure functions on settings.

Which way gamma must move to send more words to the base model differs by router (up
for `p`, down for `h`, down for `nudging`...). Rather than keep a table that could drift
from the routers, `towards_base` asks the router itself: it decides once at each end of
its gamma range on middling signals and sees which end chose the base.
"""

from __future__ import annotations

from baco_local.core.routers import BASE, ROUTERS, SOURCES, RouterSpec, Signals, get_router
from baco_local.core.settings import GenerationSettings
from baco_local.core.token_roles import Role


def next_router(name: str, step: int = 1) -> str:
    """The router after `name` in the order `baco routers` lists them (wrapping round)."""
    names = list(ROUTERS)
    index = names.index(name) if name in names else -1
    return names[(index + step) % len(names)]


def gamma_step(spec: RouterSpec) -> float:
    """One press of +/-: 0.05 on a probability dial, 0.25 nats on an entropy dial."""
    low, high = spec.gamma_range
    return 0.05 if high - low <= 1 else 0.25


def towards_base(spec: RouterSpec) -> int:
    """+1 when raising gamma sends more words to the base model, -1 when lowering does,
    0 when the router has no dial (or gamma does not change its choice)."""
    if not spec.has_gamma:
        return 0
    low, high = spec.gamma_range
    middling = Signals(top1_prob=0.5, entropy=(low + high) / 2, top1_role=Role.CONTENT, uniform=0.5)
    if spec.decide(middling, high) not in SOURCES:
        return 1  # a mixture (the ensemble baseline): gamma is the base model's weight
    at_low = spec.decide(middling, low) == BASE
    at_high = spec.decide(middling, high) == BASE
    return int(at_high) - int(at_low)


def nudge_gamma(settings: GenerationSettings, steps: int) -> GenerationSettings:
    """settings with gamma moved by `steps` presses, kept inside the router's range.
    Unchanged for a router without a dial."""
    spec = get_router(settings.router)
    if not spec.has_gamma:
        return settings
    low, high = spec.gamma_range
    gamma = round(settings.gamma + steps * gamma_step(spec), 4)
    return settings.with_changes(gamma=min(max(gamma, low), high))


def nudge_diversity(settings: GenerationSettings, steps: int) -> GenerationSettings:
    """`steps` presses towards the base model (more different answers); negative steps
    go towards the aligned model (more alike)."""
    direction = towards_base(get_router(settings.router))
    return nudge_gamma(settings, steps * direction)


def describe_dial(settings: GenerationSettings) -> str:
    """A short label for the status line: 'p-punc γ0.50'."""
    if settings.gamma is None:
        return settings.router
    return f"{settings.router} γ{settings.gamma:.2f}"

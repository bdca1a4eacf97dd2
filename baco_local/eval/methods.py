"""Methods under evaluation, each a curve of points (one point = one setting).

A method is a router swept over gamma, or a baseline:

| name       | what                                                   | swept over            |
| ---------- | ------------------------------------------------------ | --------------------- |
| aligned    | the aligned model alone                                 | temperature           |
| base       | the base model alone                                    | (one point)           |
| min-p      | the aligned model, min-p 0.1 with no top-k/top-p        | temperature           |
| prompted   | the aligned model told to be original (system prompt)   | (one point)           |
| nudging    | base leads, aligned supplies unsure words (Fei et al.)  | gamma                 |
| random     | random switching between the models                     | gamma                 |
| ensemble   | sampling from gamma*P_base + (1-gamma)*P_aligned        | gamma (base weight)   |
| any router | p, h, punc, fc, p-punc, h-punc, p-fc (`baco routers`)   | gamma (when it has one) |
| R+min-p    | router R, both models sampled with min-p 0.1 (no top-k/p) | gamma x temperature |

Routers other than nudging and random are BACo's; the rest are baselines. Write a
method as NAME or NAME@V1/V2/... to choose its sweep values. A router combined with a
sampler is written ROUTER[@G1/G2]+SAMPLER[@T1/T2] (e.g. `p-punc@0.35+min-p@T1/1.5`):
its points are every gamma with every temperature (gammas as for the router alone,
temperature 1 when none is given), so eval can show whether BACo plus a sampler reaches
a frontier that neither reaches alone.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..core.routers import ROUTERS
from ..core.sampler_presets import SAMPLER_PRESETS
from ..core.settings import GenerationSettings
from ..errors import BacoError, SettingsError, unknown_name_error

BE_ORIGINAL = (
    "Be original. Avoid the first answer that comes to mind and the most common one: "
    "give an answer few others would give, while still doing what is asked."
)
BASELINES = ("aligned", "base", "min-p", "prompted", "nudging", "random", "ensemble")
# Sweep values when none are given. Probability dials in [0, 1]; entropy dials in nats.
DEFAULT_SWEEPS = {
    "aligned": (0.6, 1.0, 1.4),
    "min-p": (1.0, 1.5, 2.0),
    "nudging": (0.2, 0.4, 0.6),
    "random": (0.25, 0.5, 0.75),
    "ensemble": (0.25, 0.5, 0.75),
    "p": (0.3, 0.5, 0.7),
    "p-punc": (0.3, 0.5, 0.7),
    "p-fc": (0.3, 0.5, 0.7),
    "h": (0.5, 1.5, 3.0),
    "h-punc": (0.5, 1.5, 3.0),
}
TEMPERATURE_SWEPT = ("aligned", "min-p")
# Samplers a router can be combined with (the sampling fields they set), and the
# temperatures used when none are given.
SAMPLERS = SAMPLER_PRESETS
COMBINED_TEMPERATURES = (1.0,)
DEFAULT_METHODS = ("aligned", "base", "min-p", "prompted", "nudging", "ensemble", "p-punc")


@dataclass(frozen=True)
class Point:
    """One setting of one method: what a work unit generates with.

    label: unique, e.g. "p-punc@0.5", "aligned@T1", "base". value: the swept value or None.
    settings: GenerationSettings fields (JSON-friendly). system: a system prompt or None.
    """

    method: str
    label: str
    value: float | None
    settings: dict
    system: str | None = None


def is_router_method(method: str) -> bool:
    """True for BACo's own routers (alone or with a sampler); False for baselines."""
    return method.partition("+")[0] not in BASELINES


def parse_methods(text: str) -> list[str]:
    """Split a --methods value; returns the items (NAME or NAME@V1/V2, or
    ROUTER[@...]+SAMPLER[@...]), checked by name."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise SettingsError("--methods names no method.", "e.g. --methods aligned,base,p-punc")
    for item in items:
        router, sampler = _split_combination(item)
        _check_name(router.partition("@")[0])
        if sampler is not None:
            _check_combination(item, router.partition("@")[0], sampler.partition("@")[0])
    return items


def build_points(
    items: list[str], shared: GenerationSettings, gammas: list[float] | None = None
) -> list[Point]:
    """All points of all methods, in order. shared: the sampling settings every method
    starts from. gammas: sweep values for every gamma method given without its own."""
    points: list[Point] = []
    for item in items:
        router, sampler = _split_combination(item)
        name, _, values = router.partition("@")
        sweep = _parse_values(item, values) if values else None
        if sampler is None:
            points.extend(_method_points(name, sweep, gammas, shared))
        else:
            points.extend(_combined_points(item, name, sweep, gammas, sampler, shared))
    labels = [p.label for p in points]
    if len(set(labels)) != len(labels):
        raise SettingsError("--methods lists one setting twice.", "name each method and value once")
    return points


def _method_points(name, sweep, gammas, shared: GenerationSettings) -> list[Point]:
    if name in TEMPERATURE_SWEPT:
        temps = sweep or DEFAULT_SWEEPS[name]
        extra = {"min_p": 0.1, "top_p": 1.0, "top_k": 0} if name == "min-p" else {}
        return [
            _point(name, f"{name}@T{t:g}", t, shared, router="aligned", temperature=t, **extra)
            for t in temps
        ]
    if name == "prompted":
        return [_point(name, name, None, shared, system=BE_ORIGINAL, router="aligned")]
    spec = ROUTERS[name]
    if not spec.has_gamma:
        if sweep:
            raise SettingsError(f"{name} has no gamma to sweep.", f"write plain {name!r}")
        return [_point(name, name, None, shared, router=name)]
    values = sweep or gammas or DEFAULT_SWEEPS.get(name) or (spec.gamma_default,)
    return [_point(name, f"{name}@{g:g}", g, shared, router=name, gamma=g) for g in values]


def _combined_points(item, router, sweep, gammas, sampler, shared) -> list[Point]:
    """Every gamma of the router with every temperature of the sampler."""
    name, _, values = sampler.partition("@")
    temperatures = _parse_values(item, values.replace("T", "")) if values else None
    spec = ROUTERS[router]
    method = f"{router}+{name}"
    gammas = sweep or gammas or DEFAULT_SWEEPS.get(router) or (spec.gamma_default,)
    if not spec.has_gamma:
        if sweep:
            raise SettingsError(f"{router} has no gamma to sweep.", f"write plain {router!r}")
        gammas = (None,)
    points = []
    for g in gammas:
        for t in temperatures or COMBINED_TEMPERATURES:
            head = router if g is None else f"{router}@{g:g}"
            label = f"{head}+{name}@T{t:g}"
            changes = {"router": router, "temperature": t, **SAMPLERS[name]}
            if g is not None:
                changes["gamma"] = g
            points.append(_point(method, label, g, shared, **changes))
    return points


def _split_combination(item: str) -> tuple[str, str | None]:
    """("p-punc@0.3", "min-p@T1") for "p-punc@0.3+min-p@T1"; (item, None) for one method."""
    router, plus, sampler = item.partition("+")
    if plus and not sampler.strip():
        raise SettingsError(
            f"{item!r} names no sampler after '+'.", "write ROUTER+min-p, e.g. p-punc+min-p@T1"
        )
    return router.strip(), (sampler.strip() if plus else None)


def _check_combination(item: str, router: str, sampler: str) -> None:
    if sampler not in SAMPLERS:
        raise unknown_name_error("sampler", sampler, SAMPLERS, "baco eval --help")
    if router in BASELINES:
        raise SettingsError(
            f"{item!r}: a sampler combines with one of BACo's routers, not the {router!r} "
            "baseline.",
            f"use a router such as p-punc+{sampler}, or the {sampler!r} baseline alone",
        )


def _point(method, label, value, shared, *, system=None, **changes) -> Point:
    settings = shared.with_changes(**changes)  # validates gamma and temperature ranges
    fields = {k: v for k, v in dataclasses.asdict(settings).items() if k != "seed"}
    fields["stop"] = list(settings.stop)  # JSON-friendly; every other field is a scalar
    return Point(method, label, value, fields, system)


def _check_name(name: str) -> None:
    known = set(BASELINES) | set(ROUTERS)
    if name == "ensemble" and "ensemble" not in ROUTERS:
        raise BacoError(
            "The ensemble baseline needs the 'ensemble' router, which this version lacks.",
            "leave ensemble out of --methods",
        )
    if name not in known:
        raise unknown_name_error("method", name, known, "baco eval --help")


def _parse_values(item: str, text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split("/") if v.strip())
    except ValueError:
        values = ()
    if not values:
        raise SettingsError(
            f"Cannot read the values in {item!r}.", "write NAME@V1/V2, e.g. p-punc@0.3/0.6"
        )
    return values


def default_methods() -> list[str]:
    """The default --methods, without ensemble when the engine has no such router."""
    return [m for m in DEFAULT_METHODS if m != "ensemble" or "ensemble" in ROUTERS]

"""What the terminal app remembers between runs: the settings the user chose (the gamma
dial, ctrl+t, the settings panel) and the brainstorm answer count, in
`config_dir()/chat.json`.

Only the fields the user changed are kept, never a whole set of settings: each pair's
recommended settings stay the base, the remembered choices go on top of them, and the
command line's options on top of those. A file that cannot be read, or whose values
are no longer valid, is set aside with a warning, never an error: the app opens with
the pair's settings and writes the file again at the user's next change. The file is
written whole or not at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from baco_local.errors import BacoError
from baco_local.files import write_atomic
from baco_local.paths import config_dir

FILE_NAME = "chat.json"
VERSION = 1
# Chosen for one run, not as a habit: a seed kept would repeat every later chat's draws.
NOT_KEPT = frozenset({"seed"})


@dataclass(frozen=True)
class Remembered:
    """settings: GenerationSettings fields the user chose; brainstorm_n: answers per
    brainstorm prompt, when the user set it."""

    settings: dict = field(default_factory=dict)
    brainstorm_n: int | None = None


def default_path() -> Path:
    return config_dir() / FILE_NAME


def load(path: str | Path) -> tuple[Remembered, str | None]:
    """What the file remembers, and a warning when it could not be used (None when it was
    used, or there is none yet)."""
    path = Path(path)
    fresh = "starting from the pair's settings; your next change rewrites it"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Remembered(), None
    except (OSError, UnicodeDecodeError) as error:
        return Remembered(), (
            f"Could not read your saved settings in {path} ({error}); starting from the "
            "pair's settings. Check the file's permissions, or delete it."
        )
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("settings", {}), dict):
        return Remembered(), f"{path} does not hold settings this version can read; {fresh}."
    settings, problem = _checked(data.get("settings", {}))
    n = data.get("brainstorm_n")
    if not (isinstance(n, int) and not isinstance(n, bool) and 2 <= n <= 20):
        n = None
    if problem:
        note = (
            f"Some of your saved settings in {path} were left out: {problem}. The others "
            "apply; your next change rewrites the file."
        )
        return Remembered(settings, n), note
    return Remembered(settings, n), None


def save(path: str | Path, remembered: Remembered) -> None:
    """Write what to remember (OSError when the file cannot be written)."""
    path = Path(path)
    settings = {
        name: list(value) if isinstance(value, tuple) else value
        for name, value in remembered.settings.items()
    }
    data = {"version": VERSION, "settings": settings}
    if remembered.brainstorm_n is not None:
        data["brainstorm_n"] = remembered.brainstorm_n
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def on_top(remembered: dict, given: dict) -> dict:
    """The command line's choices over the remembered ones. A remembered gamma belongs
    to its router: it goes when the command line names another router without a gamma,
    and a gamma given without a router is for the pair's router, as it is when nothing
    is remembered."""
    merged = dict(remembered)
    if "router" in given and "gamma" not in given and given["router"] != merged.get("router"):
        merged.pop("gamma", None)
    if "gamma" in given and "router" not in given:
        merged.pop("router", None)
    merged.update(given)
    return merged


def _checked(settings: dict) -> tuple[dict, str | None]:
    """The valid fields this version knows, and what was left out (None: nothing). Each
    field is checked on its own, a gamma with its router (and left out with it)."""
    from baco_local.core.settings import GenerationSettings
    from baco_local.core.settings_fields import generation_fields

    known = {f.name: f for f in generation_fields()}
    changes, problems = {}, []
    for name, value in settings.items():
        if name not in known or name in NOT_KEPT:
            continue
        setting = known[name]
        if setting.repeated:
            if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                problems.append(f"{name} is not a list of strings")
                continue
            value = tuple(value)
        elif not _fits(setting.kind, setting.optional, value):
            problems.append(
                f"{name} is {json.dumps(value)}, not {_KINDS.get(setting.kind, 'valid')}"
            )
            continue
        changes[name] = value
    defaults = GenerationSettings()
    for name in [n for n in changes if n != "gamma"] + ["gamma"] * ("gamma" in changes):
        if name not in changes:  # a gamma left out with its router
            continue
        alone = {name: changes[name]}
        if name == "gamma":
            alone["router"] = changes.get("router", defaults.router)
        try:
            defaults.with_changes(**alone)
        except BacoError as error:
            problems.append(error.message.rstrip("."))
            del changes[name]
            if name == "router":
                changes.pop("gamma", None)
    return changes, "; ".join(problems) or None


_KINDS = {float: "a number", int: "a whole number", str: "text", bool: "true or false"}


def _fits(kind: type, optional: bool, value) -> bool:
    """True when a JSON value has the field's type (a whole number is a number too)."""
    if value is None:
        return optional
    if isinstance(value, bool) or kind is bool:
        return isinstance(value, bool) and kind is bool
    if kind is float:
        return isinstance(value, (int, float))
    return isinstance(value, kind)

"""GenerationSettings' fields as the edges see them: one list, read from the dataclass.

The CLI's options (`--top-p`), the server's request fields (`top_p`) and the `llm`
plugin's options (`-o top_p`) are all built from `generation_fields()`, each with the
help text kept in the field's metadata, so a new setting reaches every edge at once and
the copies cannot drift.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass

from .settings import GenerationSettings


@dataclass(frozen=True)
class SettingField:
    """One GenerationSettings field.

    kind: the value's type (int, float or str; for `repeated` fields, each item's).
    optional: None is a valid value (it means "the default of something else").
    repeated: a tuple of values (stop strings); the CLI option may be given many times.
    """

    name: str
    kind: type
    optional: bool
    repeated: bool
    default: object
    help: str
    metavar: str | None
    choices: tuple | None

    @property
    def option(self) -> str:
        """The command-line option: top_p -> --top-p."""
        return "--" + self.name.replace("_", "-")


def generation_fields() -> list[SettingField]:
    """Every GenerationSettings field, in declaration order."""
    hints = typing.get_type_hints(GenerationSettings)
    found = []
    for f in dataclasses.fields(GenerationSettings):
        kind, optional, repeated = _describe(hints[f.name])
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        found.append(
            SettingField(
                f.name,
                kind,
                optional,
                repeated,
                default,
                f.metadata["help"],
                f.metadata.get("metavar"),
                f.metadata.get("choices"),
            )
        )
    return found


def _describe(hint) -> tuple[type, bool, bool]:
    """(kind, optional, repeated) for int, float | None, tuple[str, ...] and the like."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    optional = len(args) < len(typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        return args[0], False, True
    if optional:
        (hint,) = args
    return hint, optional, False

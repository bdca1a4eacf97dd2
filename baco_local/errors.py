"""Errors that reach users: each names the problem and, separately, the fix.

The CLI and the terminal app print `BacoError` as one readable message and exit
non-zero; anything else is a bug and shows a traceback only with `--verbose`.
"""

from __future__ import annotations


class BacoError(Exception):
    """A problem the user can fix. `hint` says how, in one sentence."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class SettingsError(BacoError, ValueError):
    """A setting outside its valid range or of the wrong kind."""


class ModelFileError(BacoError):
    """A model file that is missing, unreadable or not a usable GGUF."""


class NotEnoughMemoryError(BacoError):
    """The models and their context caches need more memory than is available."""


class VocabularyMismatchError(BacoError):
    """The two models of a pair do not share one vocabulary."""


class PromptError(BacoError):
    """A prompt that cannot be formatted or does not fit the context."""


class Cancelled(Exception):  # noqa: N818 (a signal, not an error)
    """Raised between prompt chunks when the user stopped the generation."""


def nearest_names(name: str, choices, limit: int = 3) -> list[str]:
    """Return up to `limit` choices that look like `name`, best first."""
    import difflib

    return difflib.get_close_matches(name, list(choices), n=limit, cutoff=0.4)


def unknown_name_error(kind: str, name: str, choices, hint_command: str) -> BacoError:
    """An error for an unknown router, pair, task...: suggests the nearest names."""
    close = nearest_names(name, choices)
    suggestion = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return SettingsError(
        f"Unknown {kind} {name!r}.{suggestion}",
        f"valid {kind}s: {', '.join(sorted(choices))} (list them with `{hint_command}`)",
    )

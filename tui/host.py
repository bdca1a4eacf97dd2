"""What the screens may ask of the app, written down once.

The app (`tui.app.BacoApp`) imports the screens; the screens never import the app.
They reach it through `self.host`, typed as `Host` below, which names exactly the
state and methods they share: the pair, the dial, the session store and a few
actions. `error_text` lives here too, since the app and every screen show errors.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, cast

from baco_local.errors import BacoError

if TYPE_CHECKING:
    from rich.text import Text

    from baco_local.core.settings import GenerationSettings, LoadSettings

    from .store import SessionStore


class Host(Protocol):
    """The app as the screens see it."""

    pair: Any  # baco_local.Pair, or None while none is loaded
    pair_label: str
    pair_name: str
    pair_loading: bool
    settings: GenerationSettings
    load_settings: LoadSettings
    system: str | None
    brainstorm_n: int
    show_sources: bool
    follow_pair: bool
    random: random.Random
    store: SessionStore

    def pair_missing(self) -> str: ...

    def switch_pair(self, loader: Callable[[], object], what: str) -> None: ...

    def set_settings(self, settings: GenerationSettings) -> None: ...

    def apply_settings_panel(
        self, settings: GenerationSettings, system: str | None, brainstorm_n: int
    ) -> None: ...

    def status_parts(self, mode: str, stats=None) -> list[Text]: ...

    def open_session(self, session_id: int) -> Awaitable[None]: ...


class HostedMixin:
    """For screens: `self.host` is the running app, typed as a Host."""

    @property
    def host(self) -> Host:
        return cast(Host, self.app)


def error_text(error: Exception) -> str:
    """A readable line for any error: a BacoError's message and hint, else its type."""
    if isinstance(error, BacoError):
        return str(error)
    return f"unexpected {type(error).__name__}: {error}"

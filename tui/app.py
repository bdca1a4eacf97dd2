"""The terminal app: chat, brainstorm and compare on one base/aligned pair.

The app owns what the screens share: the loaded pair (loaded in a worker thread, so the
app appears at once), the generation settings (the dial), the session store, and the
keys that work everywhere. Screens run answers in their own workers and write what they
show to the store.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import App
from textual.binding import Binding
from textual.screen import ModalScreen

from baco_local.core.routers import ROUTERS, get_router
from baco_local.core.settings import GenerationSettings, LoadSettings
from baco_local.errors import BacoError

from .dial import describe_dial, next_router, nudge_gamma
from .host import error_text
from .messages import PairFailed, PairLoaded
from .preferences import NOT_KEPT, Remembered
from .preferences import save as save_preferences
from .store import SessionStore

MODE_SCREENS = ("chat", "brainstorm", "compare", "sessions", "models")
GAMMA_KEYS = Binding.Group("gamma −/+")


class BacoApp(App):
    """`baco chat`. load_pair: called in a worker thread, returns a loaded Pair.

    timings=False hides tokens/s (for reproducible screenshots); seed fixes the app's
    own random choices (compare order, brainstorm seeds when settings.seed is None).
    follow_pair: when a pair loads, take the settings it recommends (Pair.default_settings:
    the catalog's router, gamma, lead and sampler) with the user's own choices on top:
    `chosen` (the command line's options) and whatever the dial and the settings panel
    change later. `baco chat` sets it; so does choosing a pair on the models screen.
    """

    CSS_PATH = "baco.tcss"
    TITLE = "baco"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("f1", "help", "Help", priority=True),
        Binding("f2", "mode('chat')", "Chat", priority=True),
        Binding("f3", "mode('brainstorm')", "Brainstorm", priority=True),
        Binding("f4", "mode('compare')", "Compare", priority=True),
        Binding("f5", "mode('sessions')", "Sessions", priority=True),
        Binding("f6", "mode('models')", "Models", priority=True),
        Binding("ctrl+t", "next_router", "Router", priority=True),
        Binding("f7", "gamma(-1)", "γ−", priority=True, group=GAMMA_KEYS),
        Binding("f8", "gamma(1)", "γ+", priority=True, group=GAMMA_KEYS),
        Binding("minus", "gamma(-1)", "γ−", show=False),
        Binding("plus,equals_sign", "gamma(1)", "γ+", show=False),
        Binding("ctrl+o", "toggle_sources", "Colours", priority=True),
        Binding("ctrl+s", "settings", "Settings", priority=True),
        Binding("ctrl+c,ctrl+q", "quit", "Quit", priority=True),
        Binding("q", "quit", "Quit", show=False),
    ]

    def __init__(
        self,
        load_pair: Callable[[], object] | None = None,
        *,
        pair_name: str = "the default pair",
        settings: GenerationSettings | None = None,
        system: str | None = None,
        load_settings: LoadSettings | None = None,
        store_path=None,
        clock: Callable[[], float] = time.time,
        timings: bool = True,
        seed: int | None = None,
        brainstorm_n: int = 5,
        follow_pair: bool = False,
        chosen: Mapping | None = None,
        remember: Path | None = None,
        remembered: Remembered | None = None,
        notes: Sequence[str] = (),
    ):
        super().__init__()
        self.load_settings = load_settings or LoadSettings()
        self._first_load = (load_pair, pair_name)
        self.settings = settings or GenerationSettings()
        self.system = system
        self.brainstorm_n = brainstorm_n
        self.follow_pair = follow_pair
        self.chosen: dict = dict(chosen or {})  # GenerationSettings fields the user set
        self._router_gammas: dict[str, float | None] = {}  # ctrl+t: each router's last gamma
        # What the app keeps for the next run (tui.preferences), in `remember` (None:
        # nothing is kept): the choices remembered from earlier runs and those made in the
        # app since, not the command line's, which hold for this run only.
        self._remember_path = remember
        self._kept = remembered or Remembered()
        self._notes = tuple(notes)  # shown once the app is up (e.g. saved settings set aside)
        self.show_sources = True
        self.timings = timings
        self.random = random.Random(seed)
        self.pair = None
        self.pair_label = f"loading {pair_name}…"
        self.pair_name = pair_name
        self.pair_loading = True
        self._load_id = 0  # counts load_pair() calls; only the newest one's pair is kept
        self._store_path, self._clock = store_path, clock
        self.store: SessionStore | None = None
        self.mode_screens: dict = {}

    # --- start and stop ---------------------------------------------------------------

    def on_mount(self) -> None:
        from .screens import SCREEN_CLASSES

        self.store = self._open_store()
        for name in MODE_SCREENS:
            self.mode_screens[name] = SCREEN_CLASSES[name]()
            self.install_screen(self.mode_screens[name], name=name)
        self.push_screen("chat")
        load_pair, what = self._first_load
        self.load_pair(load_pair or _default_loader(self.load_settings), what)
        for note in self._notes:
            self.notify(note, severity="warning", timeout=10)

    store_problem: str | None = None  # why the sessions file could not be opened

    def _open_store(self) -> SessionStore:
        try:
            return SessionStore(self._store_path, clock=self._clock)
        except BacoError as error:
            self.store_problem = str(error)
            self.notify(
                f"{error}\nSessions are kept in memory only: they are lost when you quit.",
                severity="error",
                timeout=60,
            )
            return SessionStore(":memory:", clock=self._clock)

    async def action_quit(self) -> None:
        self.stop_all_answers()
        self.exit()

    def stop_all_answers(self) -> None:
        for name in ("chat", "brainstorm", "compare"):
            screen = self.get_screen(name)
            if screen.job is not None:
                screen.job.cancel()

    def close_pair(self) -> None:
        """Release the models (call after the app has exited)."""
        if self.pair is not None:
            self.pair.close()
            self.pair = None
        if self.store is not None:
            self.store.close()

    # --- the pair ---------------------------------------------------------------------

    def load_pair(self, loader: Callable[[], object], what: str) -> None:
        self._load_id += 1
        self.pair_loading = True
        self.pair_name = what
        self.pair_label = f"loading {what}…"
        self.refresh_status()
        self._load_in_thread(loader, what, self._load_id)

    @work(thread=True, group="load-pair")
    def _load_in_thread(self, loader, what: str, load_id: int) -> None:
        started = time.monotonic()
        try:
            pair = loader()
        except Exception as error:  # noqa: BLE001 - shown as a notification, never a crash
            self.post_message(PairFailed(error, what, load_id))
            return
        self.post_message(PairLoaded(pair, time.monotonic() - started, load_id))

    def on_pair_loaded(self, message: PairLoaded) -> None:
        if message.load_id != self._load_id:  # the user chose another pair meanwhile
            self._close_in_thread(message.pair)
            return
        self.stop_all_answers()  # none should run on the old pair while it closes
        old, self.pair = self.pair, message.pair
        self.pair_loading = False
        self.pair_label = message.pair.label
        for note in message.pair.notes:
            self.notify(note, title="Note", timeout=6)
        if self.follow_pair:
            self._adopt_pair_settings(message.pair)
        self.refresh_status()
        if old is not None:
            self._close_in_thread(old)

    @work(thread=True, group="close-pair")
    def _close_in_thread(self, pair) -> None:
        # close() waits for an answer still running on the pair (they were all stopped,
        # but a long prompt is read to its end first): never on the event loop.
        pair.close()

    def on_pair_failed(self, message: PairFailed) -> None:
        if message.load_id != self._load_id:
            return  # a pair the user no longer wants
        self.pair_loading = False
        self.pair_label = "no pair loaded" if self.pair is None else self.pair.label
        self.notify(
            error_text(message.error) + "\nF6 opens the models screen.",
            title=f"Could not load {message.what}",
            severity="error",
            timeout=15,
        )
        self.refresh_status()

    def switch_pair(self, loader: Callable[[], object], what: str) -> None:
        self.stop_all_answers()
        self.load_pair(loader, what)

    def _adopt_pair_settings(self, pair) -> None:
        """The pair's recommended settings with the user's choices on top: the same rule
        as the Python API's `pair.generate(prompt, **changes)` and `baco run`."""
        self._router_gammas.clear()  # ctrl+t starts again from this pair's gammas
        try:
            settings = _checked(pair, self.chosen)
        except BacoError as error:  # e.g. the ensemble (one vocabulary) on a pair of two
            # The router and gamma give way to the pair's; the other choices hold.
            rest = {k: v for k, v in self.chosen.items() if k not in ("router", "gamma")}
            try:
                settings, used = _checked(pair, rest), "this pair's router and gamma"
            except BacoError:
                settings, used = pair.default_settings, "this pair's settings"
            remembered = "router" in self._kept.settings or "gamma" in self._kept.settings
            since = " (remembered from an earlier run)" if remembered else ""
            self.notify(
                f"{error_text(error)}\nUsing {used} instead{since}: ctrl+t picks a router.",
                severity="warning",
            )
        if settings != self.settings:
            self.settings = settings
            self.refresh_status()
            self.refresh_bindings()
            self.notify(f"Router {describe_dial(settings)}, as set for this pair.", timeout=4)

    def pair_missing(self) -> str:
        if self.pair_loading:
            return "The pair is still loading; send again in a moment."
        return "No pair is loaded: press F6 to choose one."

    # --- the dial and display ---------------------------------------------------------

    def set_settings(self, settings: GenerationSettings) -> None:
        """New settings chosen by the user: the fields they change are kept as the user's
        choices when another pair loads (a gamma with the router it was set for)."""
        changed = _changed_fields(self.settings, settings)
        kept = dict(self._kept.settings)
        for choices in (self.chosen, kept):
            _note_choices(choices, settings, changed)
        for name in NOT_KEPT:
            kept.pop(name, None)
        self.settings = settings
        self.refresh_status()
        self.refresh_bindings()
        self._remember(dataclasses.replace(self._kept, settings=kept))

    def _remember(self, kept: Remembered) -> None:
        """Keep these choices for the next run (when the app was given a file)."""
        if kept == self._kept:
            return
        self._kept = kept
        if self._remember_path is None:
            return
        try:
            save_preferences(self._remember_path, kept)
        except OSError as error:
            self.notify(
                f"Could not save your settings to {self._remember_path} ({error}); they hold "
                f"until you quit. Check that {self._remember_path.parent} is writable.",
                severity="warning",
            )
            self._remember_path = None  # said once

    def action_next_router(self) -> None:
        """The next router this pair can run (the ensemble needs one vocabulary), at the
        gamma it had when the user left it, else the pair's recommended gamma for the
        pair's recommended router, else the router's own default."""
        self._router_gammas[self.settings.router] = self.settings.gamma
        recommended = self.pair.default_settings if self.pair is not None else None
        name = self.settings.router
        for _ in ROUTERS:
            name = next_router(name)
            settings = self.settings.with_changes(router=name)
            if name in self._router_gammas:
                settings = settings.with_changes(gamma=self._router_gammas[name])
            elif recommended is not None and name == recommended.router:
                settings = settings.with_changes(gamma=recommended.gamma)
            if self.pair is None:
                break
            try:
                self.pair.check_settings(settings)
                break
            except BacoError:
                continue
        self.set_settings(settings)
        self.notify(f"{settings.router}: {get_router(settings.router).description}", timeout=3)

    def action_gamma(self, steps: int) -> None:
        if not get_router(self.settings.router).has_gamma:
            self.notify(
                f"Router {self.settings.router} has no gamma; ctrl+t picks another router.",
                severity="warning",
                timeout=3,
            )
            return
        self.set_settings(nudge_gamma(self.settings, steps))

    def action_toggle_sources(self) -> None:
        self.show_sources = not self.show_sources
        for name in ("chat", "brainstorm", "compare"):
            self.get_screen(name).apply_show_sources()
        self.refresh_status()

    def status_parts(self, mode: str, stats=None) -> list[Text]:
        """The status line: mode, pair, dial, % base and speed of the last answer."""
        label = Text(self.pair_label, style="italic" if self.pair_loading else "bold")
        parts = [Text(f" {mode} ", style="reverse bold") + Text(" "), label]
        parts.append(Text(describe_dial(self.settings)))
        if stats is not None:
            parts.append(Text(f"{stats.base_fraction:.0%} base"))
            if self.timings:
                parts.append(Text(f"{stats.tokens_per_second:.1f} tok/s"))
        return parts

    def refresh_status(self) -> None:
        refresh = getattr(self.screen, "refresh_status", None)
        if refresh is not None:
            refresh()

    # --- screens ----------------------------------------------------------------------

    async def action_mode(self, name: str) -> None:
        while isinstance(self.screen, ModalScreen):
            await self.pop_screen()
        if self.screen is not self.get_screen(name):
            await self.switch_screen(name)
        self.refresh_bindings()

    def check_action(self, action: str, parameters) -> bool | None:
        """Hide the key of the mode on screen; dim gamma keys for a router without gamma."""
        if action == "mode":
            return self.screen is not self.mode_screens.get(parameters[0])
        if action == "gamma":
            return True if get_router(self.settings.router).has_gamma else None
        return True

    def action_help(self) -> None:
        from .screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
        else:
            self.push_screen(HelpScreen())

    def action_settings(self) -> None:
        from .screens.settings import SettingsScreen

        if isinstance(self.screen, SettingsScreen):
            self.screen.action_save()  # ctrl+s in the panel saves it
            return
        if isinstance(self.screen, ModalScreen):
            return
        self.push_screen(SettingsScreen(self.settings, self.system, self.brainstorm_n))

    def apply_settings_panel(self, settings, system: str | None, brainstorm_n: int) -> None:
        self.system = system
        if brainstorm_n != self.brainstorm_n:
            self.brainstorm_n = brainstorm_n
            self._remember(dataclasses.replace(self._kept, brainstorm_n=brainstorm_n))
        self.set_settings(settings)

    async def open_session(self, session_id: int) -> None:
        """Reopen a stored session in the screen of its kind."""
        session = self.store.session(session_id)
        if session.kind == "compare":
            from .screens.session_view import SessionViewScreen

            self.push_screen(SessionViewScreen(session_id))
            return
        await self.action_mode(session.kind)
        await self.get_screen(session.kind).load_session(session, self.store.messages(session_id))


def _checked(pair, choices: Mapping) -> GenerationSettings:
    """The pair's recommended settings with these choices on top, if the pair can run
    them (BacoError if not)."""
    settings = pair.default_settings.with_changes(**choices)
    pair.check_settings(settings)
    return settings


def _note_choices(choices: dict, settings: GenerationSettings, changed: list[str]) -> None:
    """Record the fields the user changed in `choices`: a gamma with the router it was
    set for, and no gamma where the router's own default came with a new router."""
    for name in changed:
        choices[name] = getattr(settings, name)
    if "gamma" in changed:
        choices["router"] = settings.router  # a gamma means something for its router
    if "router" in changed and settings.gamma == get_router(settings.router).gamma_default:
        choices.pop("gamma", None)  # the new router's own default: not a choice


def _changed_fields(old: GenerationSettings, new: GenerationSettings) -> list[str]:
    return [f.name for f in dataclasses.fields(new) if getattr(old, f.name) != getattr(new, f.name)]


def _default_loader(load_settings: LoadSettings) -> Callable[[], object]:
    def load():
        from baco_local.api import Pair

        return Pair.load(settings=load_settings)

    return load

"""The settings panel: router, gamma and the sampler, checked by GenerationSettings itself."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Select, Static

from baco_local.core.routers import ROUTERS
from baco_local.core.settings import GenerationSettings
from baco_local.errors import SettingsError

from ..bars import KeyBar
from ..host import HostedMixin

# (field, label, kind): kind parses the typed text; "" means "not set" where allowed.
FIELDS = (
    ("gamma", "gamma (router's dial)", float),
    ("temperature", "temperature (0 = greedy)", float),
    ("top_p", "top-p (1 = off)", float),
    ("top_k", "top-k (0 = off)", int),
    ("min_p", "min-p (0 = off)", float),
    ("max_tokens", "max tokens", int),
    ("seed", "seed (empty = random)", int),
)


def parse_fields(
    values: dict[str, str], settings: GenerationSettings, router: str
) -> GenerationSettings:
    """New settings from the typed values; raises SettingsError with a readable message."""
    changes: dict = {"router": router}
    for name, label, kind in FIELDS:
        text = values.get(name, "").strip()
        if not text:
            if name in ("gamma", "seed"):
                changes[name] = None
                continue
            raise SettingsError(f"{label} is empty.", "type a number")
        try:
            changes[name] = kind(text)
        except ValueError:
            expected = "a whole number" if kind is int else "a number"
            raise SettingsError(
                f"{label}: {text!r} is not {expected}.", f"type {expected}"
            ) from None
    if not ROUTERS[router].has_gamma:
        changes["gamma"] = None
    return settings.with_changes(**changes)


class SettingsScreen(HostedMixin, ModalScreen):
    AUTO_FOCUS = "#field-router"
    BINDINGS = [
        Binding("escape", "dismiss", "Cancel"),
        Binding("ctrl+s", "save", "Save (or ⏎)"),
    ]

    def __init__(self, settings: GenerationSettings, system: str | None, brainstorm_n: int):
        super().__init__()
        self.settings, self.system, self.brainstorm_n = settings, system, brainstorm_n

    def compose(self) -> ComposeResult:
        s = self.settings
        form = VerticalScroll(id="settings-form")
        form.can_focus = False  # Tab walks the fields
        with form:
            yield Static("Settings — the next answer uses them", classes="form-title")
            with Horizontal(classes="form-row"):
                yield Label("router", classes="form-label")
                yield Select(
                    [(f"{name} — {spec.description}", name) for name, spec in ROUTERS.items()],
                    value=s.router,
                    allow_blank=False,
                    compact=True,
                    id="field-router",
                )
            for name, label, _kind in FIELDS:
                value = getattr(s, name)
                with Horizontal(classes="form-row"):
                    yield Label(label, classes="form-label")
                    yield Input(
                        "" if value is None else str(value), compact=True, id=f"field-{name}"
                    )
            with Horizontal(classes="form-row"):
                yield Label("brainstorm answers", classes="form-label")
                yield Input(str(self.brainstorm_n), compact=True, id="field-n")
            with Horizontal(classes="form-row"):
                yield Label("system prompt", classes="form-label")
                yield Input(self.system or "", compact=True, id="field-system")
            yield Static(id="settings-error")
            yield KeyBar(classes="dialog-keys")

    def on_select_changed(self, message: Select.Changed) -> None:
        # A new router brings its own gamma default and range.
        spec = ROUTERS[message.value]
        gamma = self.query_one("#field-gamma", Input)
        if message.value != self.settings.router:
            gamma.value = "" if spec.gamma_default is None else str(spec.gamma_default)
        gamma.disabled = not spec.has_gamma

    def on_input_submitted(self) -> None:
        self.action_save()

    def action_save(self) -> None:
        values = {name: self.query_one(f"#field-{name}", Input).value for name, _, _ in FIELDS}
        router = self.query_one("#field-router", Select).value
        error = self.query_one("#settings-error", Static)
        try:
            settings = parse_fields(values, self.settings, router)
            n = _brainstorm_n(self.query_one("#field-n", Input).value)
        except SettingsError as problem:
            error.update(Text.assemble((problem.message, "bold red"), "\n", problem.hint or ""))
            return
        system = self.query_one("#field-system", Input).value.strip() or None
        self.host.apply_settings_panel(settings, system, n)
        self.dismiss()


def _brainstorm_n(text: str) -> int:
    try:
        n = int(text.strip())
    except ValueError:
        n = 0
    if not 2 <= n <= 20:
        raise SettingsError(
            f"brainstorm answers {text.strip()!r} is not a count from 2 to 20.",
            "use 5 for a quick set, up to 20",
        )
    return n

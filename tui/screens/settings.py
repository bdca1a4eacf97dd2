"""The settings panel: every GenerationSettings field (the same list as the CLI's options),
checked by GenerationSettings itself; the focused field's help is shown below the form."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Select, Static

from baco_local.core.routers import ROUTERS
from baco_local.core.settings import GenerationSettings
from baco_local.core.settings_fields import SettingField, generation_fields
from baco_local.errors import SettingsError

from ..bars import KeyBar
from ..host import HostedMixin

# Every GenerationSettings field but the router (a list of its own), with its help text.
FIELDS = tuple(f for f in generation_fields() if f.name != "router")
STOP_SEPARATOR = " | "  # stop strings in one line; \\n is a newline


def field_label(setting: SettingField) -> str:
    label = setting.name.replace("_", "-")
    if setting.optional:
        return f"{label} (empty = default)"
    if setting.repeated:
        return f"{label} (a | b)"
    if setting.choices:
        return f"{label} ({'/'.join(setting.choices)})"
    return label


def field_text(setting: SettingField, value) -> str:
    """A setting's value as typed in the form."""
    if value is None:
        return ""
    if setting.repeated:
        return STOP_SEPARATOR.join(_escape(v) for v in value)
    return str(value)


def parse_fields(
    values: dict[str, str], settings: GenerationSettings, router: str
) -> GenerationSettings:
    """New settings from the typed values (fields not in `values` keep their setting);
    raises SettingsError with a readable message."""
    changes: dict = {"router": router}
    for setting in FIELDS:
        text = values.get(setting.name)
        # A field left as shown keeps its value exactly (a stop string's spaces, which
        # typing in the field would not keep, or a float's digits).
        if text is not None and text != field_text(setting, getattr(settings, setting.name)):
            changes[setting.name] = _parse(setting, text)
    if not ROUTERS[router].has_gamma:
        changes["gamma"] = None
    return settings.with_changes(**changes)


def _parse(setting: SettingField, text: str):
    label = setting.name.replace("_", "-")
    if setting.repeated:
        return tuple(_unescape(p.strip()) for p in text.split("|") if p.strip())
    text = text.strip()
    if not text:
        if setting.optional:
            return None
        raise SettingsError(f"{label} is empty.", f"type a value: {setting.help}")
    if setting.kind is str:
        return text
    try:
        return setting.kind(text)
    except ValueError:
        expected = "a whole number" if setting.kind is int else "a number"
        raise SettingsError(f"{label}: {text!r} is not {expected}.", f"type {expected}") from None


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("|", "\\x7c")


def _unescape(text: str) -> str:
    return text.encode("latin-1", "backslashreplace").decode("unicode_escape")


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
            for setting in FIELDS:
                with Horizontal(classes="form-row"):
                    yield Label(field_label(setting), classes="form-label")
                    yield Input(
                        field_text(setting, getattr(s, setting.name)),
                        compact=True,
                        id=f"field-{setting.name}",
                    )
            with Horizontal(classes="form-row"):
                yield Label("brainstorm answers", classes="form-label")
                yield Input(str(self.brainstorm_n), compact=True, id="field-n")
            with Horizontal(classes="form-row"):
                yield Label("system prompt", classes="form-label")
                yield Input(self.system or "", compact=True, id="field-system")
            yield Static(id="settings-help")
            yield Static(id="settings-error")
            yield KeyBar(classes="dialog-keys")

    def on_select_changed(self, message: Select.Changed) -> None:
        # A new router brings its own gamma default and range.
        spec = ROUTERS[message.value]
        gamma = self.query_one("#field-gamma", Input)
        if message.value != self.settings.router:
            gamma.value = "" if spec.gamma_default is None else str(spec.gamma_default)
        gamma.disabled = not spec.has_gamma

    def on_descendant_focus(self, event) -> None:
        """Show the focused setting's help (the text `baco run --help` shows for it)."""
        name = (event.widget.id or "").removeprefix("field-")
        helps = {setting.name: setting.help for setting in FIELDS}
        helps["router"] = "who writes each word (`baco routers` describes each)"
        self.query_one("#settings-help", Static).update(helps.get(name, ""))

    def on_input_submitted(self) -> None:
        self.action_save()

    def action_save(self) -> None:
        values = {f.name: self.query_one(f"#field-{f.name}", Input).value for f in FIELDS}
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

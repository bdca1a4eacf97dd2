"""The help screen: what each mode does and every key."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..bars import KeyBar
from ..widgets import SOURCE_STYLES

INTRO = (
    "Two models write every answer together: the aligned (instruct) model for quality and "
    "its base model for diversity. A router decides, word by word, which one writes; gamma "
    "is its dial. Each word is coloured by its source:"
)

SECTIONS = (
    (
        "Everywhere",
        (
            ("F2 F3 F4", "Chat, Brainstorm, Compare"),
            ("F5 F6", "Sessions (reopen, export), Models (catalog, download, switch)"),
            ("ctrl+t", "next router"),
            ("F7 F8", "gamma down / up (also - and + outside a text box)"),
            (
                "ctrl+s",
                "settings: router, gamma, temperature, top-p, top-k, min-p, max tokens, "
                "seed, stop strings, lead, repetition penalty, speculative, brainstorm "
                "answers, system prompt",
            ),
            ("ctrl+o", "source colours on/off (off: finished answers as Markdown)"),
            ("Tab", "move between the prompt box and messages or cards"),
            ("F1", "this help"),
            ("ctrl+c ctrl+q", "quit (also q outside a text box)"),
        ),
    ),
    (
        "Chat",
        (
            ("Enter", "send"),
            ("ctrl+j", "new line (shift+Enter or alt+Enter where the terminal sends it)"),
            ("Esc", "stop the answer; what was written is kept"),
            ("ctrl+r", "draw the last answer again"),
            ("ctrl+e", "take your last message back into the box to edit and resend"),
            ("ctrl+y", "copy the last answer (y copies a message that has the focus)"),
            ("ctrl+n", "new conversation"),
        ),
    ),
    (
        "Brainstorm",
        (
            ("Enter", "draw N answers with seeds seed, seed+1, ... (N in settings)"),
            ("f", "keep the focused card: favourites stay when you draw again"),
            ("ctrl+l", "more like these: gamma a step towards the aligned model, draw again"),
            ("ctrl+g", "more different: gamma a step towards the base model, draw again"),
            ("y", "copy the focused card"),
            ("ctrl+n", "a new prompt (kept cards go too)"),
            ("", "distinct-2: share of word pairs that are unique (higher = more varied)"),
            ("", "similarity: mean word overlap of two answers (lower = more different)"),
        ),
    ),
    (
        "Compare",
        (
            (
                "Enter",
                "answer with the aligned model alone and with the collaboration, shown as "
                "A and B in random order",
            ),
            (
                "a b t",
                "vote A, B or tie: first for quality, then for originality; then the labels "
                "appear. Win rates count every vote so far.",
            ),
            ("ctrl+n", "a new comparison session"),
        ),
    ),
    (
        "Sessions",
        (
            ("Enter o", "reopen the selected session"),
            ("m j", "export it as Markdown or JSON (next to the sessions file)"),
            ("d", "delete it (press d twice: there is no undo)"),
        ),
    ),
    (
        "Models",
        (
            ("Enter u", "use the selected pair (it loads in the background)"),
            ("p", "download the selected pair's files"),
            ("r", "read the catalog and the downloads again"),
        ),
    ),
)


def help_text() -> Group:
    """The help as renderables: an introduction, then a two-column table per mode."""
    intro = Text.assemble(
        INTRO + " ",
        ("base", SOURCE_STYLES["base"]),
        " or ",
        ("aligned", SOURCE_STYLES["aligned"]),
        ". Everything you see is saved as it appears.",
    )
    parts: list = [intro]
    for title, rows in SECTIONS:
        table = Table.grid(padding=(0, 2))
        table.add_column(no_wrap=True, style="bold", min_width=13)
        table.add_column(ratio=1)
        for keys, what in rows:
            table.add_row(keys, what)
        parts += [Text(f"\n{title}", style="bold underline"), table]
    return Group(*parts)


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(help_text())
            yield KeyBar(classes="dialog-keys")

"""Widgets: they render what they are given and post what the user does; no engine, no store.

- PromptInput: multi-line input; Enter sends, ctrl+j (or shift/alt+Enter) adds a line.
- MessageView / AnswerCard: one message, streamed with each piece coloured by its source,
  shown as Markdown once complete when source colours are off.
- DiversityMeter: the live diversity of a brainstorm set.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Label, Markdown, Static, TextArea

from .diversity import Diversity
from .provenance import SourcedText

# Colours readable on dark and light themes. Base words are the ones to notice.
SOURCE_STYLES = {"base": "bold #e8a33d", "aligned": "#5fafe8"}
NEWLINE_KEYS = ("ctrl+j", "shift+enter", "alt+enter")


def sourced_text(runs, show_sources: bool) -> Text:
    """Rich text of (source, text) runs, coloured by source when show_sources."""
    text = Text()
    for source, piece in runs:
        text.append(piece, style=SOURCE_STYLES.get(source, "") if show_sources else "")
    return text


def cut(text: str, width: int) -> str:
    """text, shortened with an ellipsis to at most `width` characters."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def legend(show_sources: bool) -> Text:
    """The key to the colours ("sources hidden" when they are off)."""
    if not show_sources:
        return Text("sources hidden (ctrl+o)", style="dim")
    return Text.assemble(
        ("■ base", SOURCE_STYLES["base"]), "  ", ("■ aligned", SOURCE_STYLES["aligned"])
    )


class PromptInput(TextArea):
    """The prompt box. Posts Submitted(text) on Enter."""

    BINDINGS = [
        Binding("enter", "submit", "Send", key_display="⏎"),
        Binding("ctrl+j", "newline", "Newline"),
    ]

    @dataclass
    class Submitted(Message):
        input: PromptInput
        text: str

    def __init__(self, placeholder: str = "", **kwargs):
        super().__init__(soft_wrap=True, tab_behavior="focus", placeholder=placeholder, **kwargs)

    async def _on_key(self, event: events.Key) -> None:
        # TextArea inserts a newline on Enter before bindings run: take Enter first.
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.action_submit()
        elif event.key in NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            self.action_newline()
        else:
            await super()._on_key(event)

    def action_submit(self) -> None:
        self.post_message(self.Submitted(self, self.text))

    def put_back(self, text: str) -> None:
        """Put a message back in the box to edit, before whatever is typed there (kept),
        with the cursor at the end."""
        typed = self.text.strip()
        self.text = text + ("\n\n" + typed if typed else "")
        self.move_cursor(self.document.end)
        self.focus()

    def action_newline(self) -> None:
        self.insert("\n")


class MessageView(Vertical, can_focus=True):
    """One message of a conversation. Assistant text is kept as sourced runs."""

    BINDINGS = [Binding("y", "copy", "Copy message")]

    def __init__(
        self,
        role: str,
        runs=(),
        *,
        title: str = "",
        name: str | None = None,
        complete: bool = True,
        show_sources: bool = True,
        markdown: bool = True,
        classes: str = "",
    ):
        super().__init__(classes=f"message {role} {classes}".strip())
        self.role = role
        # a finished answer without colours shows as Markdown (False: as plain text)
        self.markdown = markdown
        self.speaker = name if name is not None else {"user": "You"}.get(role, "BACo")
        self.sourced = SourcedText(runs)
        self.title = title
        self.complete = complete
        self.show_sources = show_sources
        self.record_id: int | None = None  # its row in the session store
        self.stopping = False
        self.waiting: str | None = None  # what it waits for before it starts
        self._composed = False

    def compose(self) -> ComposeResult:
        self._composed = True
        yield Label(self._title_text(), classes="message-title")
        body = Static(self._body_text(), classes="message-body")
        body.display = not self._as_markdown()
        yield body
        if self._as_markdown():
            yield Markdown(self.text, classes="message-markdown")

    @property
    def text(self) -> str:
        return self.sourced.text

    def finish(self, title: str, complete: bool = True) -> None:
        self.title, self.complete = title, complete
        self._refresh_title()
        self.refresh_body()

    def set_title(self, title: str) -> None:
        self.title = title
        self._refresh_title()

    def _refresh_title(self) -> None:
        for label in self.query(".message-title"):  # none before compose
            label.update(self._title_text())

    def set_show_sources(self, show_sources: bool) -> None:
        self.show_sources = show_sources
        self.refresh_body()

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.text)
        self.notify(f"Copied {len(self.text)} characters.", timeout=2)

    # --- rendering --------------------------------------------------------------------

    def _title_text(self) -> str:
        return f"{self.speaker}  {self.title}{self._progress()}".strip()

    def _progress(self) -> str:
        """' · writing…' while the answer streams (' · stopping…' once Esc was pressed)."""
        if self.complete or self.role == "user":
            return ""
        if self.stopping:
            return " · stopping…"
        if self.waiting and not self.sourced:
            return f" · {self.waiting}"
        return " · writing… (Esc stops)" if self.sourced else " · reading the prompt… (Esc stops)"

    def set_waiting(self, waiting: str | None) -> None:
        """What the answer waits for before it can start (None: nothing)."""
        if self.role != "user" and waiting != self.waiting:
            self.waiting = waiting
            self._refresh_title()

    def mark_stopping(self) -> None:
        if not self.complete:
            self.stopping = True
            self._refresh_title()

    def _body_text(self) -> Text:
        if self.role == "user":
            return Text(self.text)
        if not self.sourced:
            return Text("…" if not self.complete else "(no text)", style="dim")
        return sourced_text(self.sourced.runs, self.show_sources)

    def _as_markdown(self) -> bool:
        return self.markdown and self.role != "user" and self.complete and not self.show_sources

    def refresh_body(self) -> None:
        if not self._composed:
            return  # compose() will show the current text
        if not self.children or not self.is_mounted:  # children still being mounted
            self.call_after_refresh(self.refresh_body)
            return
        self._refresh_title()
        body = self.query_one(".message-body", Static)
        markdown = self.query(".message-markdown")
        if self._as_markdown():
            body.display = False
            if markdown:
                markdown.first(Markdown).update(self.text)
            else:
                self.mount(Markdown(self.text, classes="message-markdown"))
        else:
            for widget in markdown:
                widget.remove()
            body.display = True
            body.update(self._body_text())


class AnswerCard(MessageView):
    """One brainstorm answer: a card that can be kept as a favourite."""

    BINDINGS = [
        Binding("f", "favourite", "Keep"),
        Binding("y", "copy", "Copy"),
    ]

    @dataclass
    class FavouriteToggled(Message):
        card: AnswerCard

    def __init__(
        self,
        number: int,
        seed: int | None,
        runs=(),
        *,
        details: str = "",
        complete: bool = False,
        favourite: bool = False,
        show_sources: bool = True,
    ):
        super().__init__(
            "assistant", runs, complete=complete, show_sources=show_sources, classes="card"
        )
        self.number, self.seed, self.favourite = number, seed, favourite
        self.details = details
        self.set_class(favourite, "favourite")

    def renumber(self, number: int) -> None:
        self.number = number
        self._refresh_title()

    def _title_text(self) -> str:
        star = "★ " if self.favourite else ""
        seed = "" if self.seed is None else f" · seed {self.seed}"
        details = f" · {self.details}" if self.details else ""
        return f"{star}Answer {self.number}{seed}{details}{self._progress()}"

    def _progress(self) -> str:
        if not self.complete and not self.stopping and not self.sourced and not self.waiting:
            return " · waiting…"  # cards are drawn together, each as the batch reaches it
        return super()._progress()

    def set_favourite(self, favourite: bool) -> None:
        self.favourite = favourite
        self.set_class(favourite, "favourite")
        self._refresh_title()

    def action_favourite(self) -> None:
        self.set_favourite(not self.favourite)
        self.post_message(self.FavouriteToggled(self))


class DiversityMeter(Static):
    """How different the answers of a brainstorm set are from one another."""

    def show(self, diversity: Diversity | None) -> None:
        if diversity is None or diversity.answers < 2:
            self.update(Text("Diversity: needs two answers or more", style="dim"))
            return
        self.update(
            Text.assemble(
                "Diversity  ",
                ("distinct-2 ", "dim"),
                _bar(diversity.distinct_2),
                f" {diversity.distinct_2:.2f}  ",
                ("similarity ", "dim"),
                _bar(diversity.similarity or 0.0),
                f" {diversity.similarity:.2f}",
                (f"  ({diversity.answers} answers)", "dim"),
            )
        )


def _bar(value: float, width: int = 10) -> Text:
    filled = round(max(0.0, min(1.0, value)) * width)
    return Text.assemble(("█" * filled, "bold"), ("░" * (width - filled), "dim"))


class VotePanel(Static, can_focus=True):
    """Two questions about answers A and B; posts Voted once both are answered."""

    QUESTIONS = ("Which answer is better written and more useful?", "Which is more original?")
    BINDINGS = [
        Binding("a", "vote('A')", "A"),
        Binding("b", "vote('B')", "B"),
        Binding("t", "vote('tie')", "Tie"),
    ]

    @dataclass
    class Voted(Message):
        quality: str  # "A", "B" or "tie"
        originality: str

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.choices: list[str] = []
        self.asking = False

    def ask(self) -> None:
        self.choices, self.asking = [], True
        self._show_question()
        self.refresh_bindings()
        self.focus()

    def close(self, text: str = "") -> None:
        self.asking = False
        self.update(text)
        self.refresh_bindings()

    def check_action(self, action: str, parameters) -> bool | None:
        return self.asking if action == "vote" else True

    def action_vote(self, choice: str) -> None:
        if not self.asking:
            return
        self.choices.append(choice)
        if len(self.choices) < len(self.QUESTIONS):
            self._show_question()
            return
        self.close()
        self.post_message(self.Voted(*self.choices))

    def _show_question(self) -> None:
        number = len(self.choices) + 1
        self.update(
            Text.assemble(
                (f"Vote {number}/2: ", "bold"),
                self.QUESTIONS[len(self.choices)],
                ("   a = A · b = B · t = tie", "dim"),
            )
        )

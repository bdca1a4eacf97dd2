"""A stored session shown read-only, as its Markdown export (used for compare sessions)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from ..bars import KeyBar
from ..export import session_markdown
from ..host import HostedMixin


class SessionViewScreen(HostedMixin, ModalScreen):
    BINDINGS = [Binding("escape", "dismiss", "Close")]

    def __init__(self, session_id: int):
        super().__init__()
        self.session_id = session_id

    def compose(self) -> ComposeResult:
        store = self.host.store
        text = session_markdown(
            store.session(self.session_id),
            store.messages(self.session_id),
            store.votes(self.session_id),
        )
        with VerticalScroll(id="session-view"):
            yield Markdown(text)
            yield KeyBar(classes="dialog-keys")

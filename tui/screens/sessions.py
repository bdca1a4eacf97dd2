"""Sessions: everything saved, newest first; reopen one, export it, or delete it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from ..export import export_session, format_time
from ..host import error_text
from ..widgets import cut
from .base import ModeScreen


class SessionsScreen(ModeScreen):
    MODE_TITLE = "Sessions"
    BINDINGS = [
        Binding("o", "open", "Open (or ⏎)"),
        Binding("m", "export('markdown')", "Export Markdown"),
        Binding("j", "export('json')", "Export JSON"),
        Binding("d", "delete", "Delete"),
    ]
    # The screen of each kind of session, and what starts it afresh (a deleted session
    # must not go on receiving messages there).
    FRESH = {
        "chat": "action_new_chat",
        "brainstorm": "action_new_set",
        "compare": "action_new_session",
    }

    def __init__(self):
        super().__init__()
        self._armed: int | None = None  # the session a first d asked to delete

    def compose_body(self) -> ComposeResult:
        yield DataTable(id="session-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="sessions-note")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("updated", "kind", "title", "size", "pair")

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.reload()
        self.query_one(DataTable).focus()

    def reload(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        sessions = self.store.sessions()
        # the title gets what the other columns leave (each column has 2 cells of padding)
        title_width = max(16, self.size.width - (16 + 10 + 8 + 14 + 12))
        for record in sessions:
            size = (
                _count(record.votes, "vote")
                if record.kind == "compare"
                else _count(record.messages, "msg")
            )
            table.add_row(
                format_time(record.updated),
                record.kind,
                cut(record.title, title_width),
                size,
                cut(record.pair, 14),
                key=str(record.id),
            )
        where = self.store.path
        if str(where) == ":memory:":  # the sessions file could not be opened at start
            note = (
                f"{len(sessions)} sessions in memory only: they are lost when you quit "
                f"({getattr(self.app, 'store_problem', None) or 'the file could not be opened'})"
            )
        elif sessions:
            note = f"{len(sessions)} sessions in {where}"
        else:
            note = f"No sessions yet ({where})."
        self.query_one("#sessions-note", Static).update(note)

    def on_resize(self) -> None:
        if self.is_current:
            self.reload()

    def selected_id(self) -> int | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return int(row_key.value)

    async def on_data_table_row_selected(self, message: DataTable.RowSelected) -> None:
        await self.host.open_session(int(message.row_key.value))

    async def action_open(self) -> None:
        session_id = self.selected_id()
        if session_id is not None:
            await self.host.open_session(session_id)

    def action_export(self, fmt: str) -> None:
        session_id = self.selected_id()
        if session_id is None:
            self.notify("There is no session to export yet.", severity="warning")
            return
        try:
            path = export_session(self.store, session_id, fmt)
        except Exception as error:  # noqa: BLE001 - a full disk is a notice, not a crash
            self.notify(error_text(error), title="Export failed", severity="error", timeout=15)
            return
        self.notify(f"Saved {path}", title="Exported", timeout=8)

    async def action_delete(self) -> None:
        """d asks, a second d on the same session deletes it (there is no undo)."""
        session_id = self.selected_id()
        if session_id is None:
            self.notify("There is no session to delete.", severity="warning")
            return
        if self._armed != session_id:
            self._armed = session_id
            title = cut(self.store.session(session_id).title, 40)
            self.notify(
                f"Press d again to delete “{title}”. It cannot be undone.",
                title="Delete this session?",
                timeout=6,
            )
            return
        self._armed = None
        for kind, fresh in self.FRESH.items():
            screen = self.app.get_screen(kind)
            if getattr(screen, "session_id", None) == session_id:
                done = getattr(screen, fresh)()
                if done is not None:
                    await done
        self.store.delete_session(session_id)
        self.reload()
        self.notify("Session deleted.", timeout=4)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"

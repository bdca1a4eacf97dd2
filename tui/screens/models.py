"""Models: the catalog, what is downloaded, pulling a pair with a progress bar, and
switching the active pair (loaded in a worker while the app stays responsive)."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, ProgressBar, Static

from ..host import error_text
from ..messages import PullDone, PullProgress
from ..widgets import cut
from .base import ModeScreen


def _catalog():
    """The catalog module, or None while it is not available."""
    try:
        from baco_local.models import catalog
    except ImportError:
        return None
    return catalog if hasattr(catalog, "load_catalog") else None


def status_label(status) -> str:
    """One word or two for the table: is it here, does it run offline, what is left."""
    if status is None:
        return ""
    if status.downloaded:
        return "downloaded"
    size = f"{status.missing_bytes / 1e9:.1f} GB" if status.missing_bytes else "files"
    if getattr(status, "runs_offline", False):
        return f"demo now; {size} to get"
    return f"{size} to download"


class ModelsScreen(ModeScreen):
    MODE_TITLE = "Models"
    BINDINGS = [
        Binding("u", "use", "Use pair (or ⏎)"),
        Binding("p", "pull", "Download"),
        Binding("r", "reload", "Refresh"),
    ]

    def __init__(self):
        super().__init__()
        self.pulling: str | None = None
        self.use_after_pull = False
        self.statuses: dict = {}
        self.pairs: dict = {}
        self.default_name: str | None = None

    def compose_body(self) -> ComposeResult:
        yield Static(id="models-note")
        yield DataTable(id="catalog-table", cursor_type="row", zebra_stripes=True)
        yield ProgressBar(id="pull-progress", show_eta=False)
        yield Static(id="pull-label")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(" ", "pair", "status", "description")
        self.query_one(ProgressBar).display = False

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.action_reload()
        self.query_one(DataTable).focus()

    def on_resize(self) -> None:
        if self.is_current:
            self.action_reload()

    def action_reload(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        note = self.query_one("#models-note", Static)
        catalog = _catalog()
        if catalog is None:
            note.update(
                f"Active pair: {self.host.pair_label}\nThe catalog is not available in this "
                "version; start with `baco chat --base FILE --aligned FILE` to use other files."
            )
            return
        try:
            pairs = catalog.load_catalog()
            self.statuses = {name: catalog.pair_status(pair) for name, pair in pairs.items()}
        except Exception as error:  # noqa: BLE001 - a broken catalog file is a notice
            note.update(f"The catalog could not be read: {error_text(error)}")
            return
        self.pairs, self.default_name = pairs, catalog.default_pair_name()
        for name, pair in pairs.items():
            mark = "●" if name == self.host.pair_name else ""
            status = status_label(self.statuses[name])
            # the description gets what the other columns leave (2 cells of padding each)
            room = max(16, self.size.width - (1 + 14 + 24 + 8 + 2))
            table.add_row(mark, name, status, cut(pair.description, room), key=name)
        self._show_note()

    def _show_note(self) -> None:
        name = self.selected()
        status = self.statuses.get(name)
        detail = getattr(status, "note", "") if status is not None else ""
        self.query_one("#models-note", Static).update(
            f"Active: {self.host.pair_label}\n{name}: {detail or status_label(status)}"
            if name
            else f"Active: {self.host.pair_label}"
        )

    def on_data_table_row_highlighted(self) -> None:
        self._show_note()

    def selected(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return row_key.value

    def on_data_table_row_selected(self) -> None:
        self.action_use()

    def action_use(self) -> None:
        name = self.selected()
        if name is None:
            return
        status = self.statuses.get(name)
        runs_offline = getattr(status, "runs_offline", False)  # on the demo weights, for now
        if status is not None and not status.downloaded and not runs_offline:
            self.notify(f"{name} is not downloaded yet: downloading it first.", timeout=4)
            self.action_pull(then_use=True)
            return
        self._use(name)

    def _use(self, name: str) -> None:
        """Load the pair in the background, with the router the catalog recommends for it."""
        load_settings = self.host.load_settings
        # The default pair loads by no name: that way it never downloads (demo weights).
        load_name = None if name == self.default_name else name

        def load():
            from baco_local.api import Pair

            return Pair.load(load_name, settings=load_settings)

        self.host.follow_pair = True  # a new pair comes with its recommended settings
        self.host.switch_pair(load, name)
        self.notify(f"Loading {name}…", timeout=3)

    def action_pull(self, then_use: bool = False) -> None:
        name = self.selected()
        if name is None or _catalog() is None:
            return
        if self.pulling is not None:
            self.notify(f"Already downloading {self.pulling}.", severity="warning")
            return
        self.pulling, self.use_after_pull = name, then_use
        bar = self.query_one(ProgressBar)
        bar.update(total=None, progress=0)
        bar.display = True
        self.query_one("#pull-label", Static).update(f"Downloading {name}…")
        self._pull(name)

    @work(thread=True, group="pull")
    def _pull(self, name: str) -> None:
        catalog = _catalog()

        def progress(filename: str, done: int, total: int) -> None:
            self.post_message(PullProgress(name, filename, done, total))

        try:
            catalog.pull_pair(name, progress=progress)
        except Exception as error:  # noqa: BLE001 - shown as a notification
            self.post_message(PullDone(name, error))
            return
        self.post_message(PullDone(name, None))

    def on_pull_progress(self, message: PullProgress) -> None:
        bar = self.query_one(ProgressBar)
        bar.update(total=message.total or None, progress=message.done)
        mb = message.done / 1e6
        self.query_one("#pull-label", Static).update(f"{message.filename}: {mb:.1f} MB")

    def on_pull_done(self, message: PullDone) -> None:
        self.pulling = None
        self.query_one(ProgressBar).display = False
        self.query_one("#pull-label", Static).update("")
        if message.error is not None:
            self.notify(
                error_text(message.error), title="Download failed", severity="error", timeout=20
            )
            return
        self.notify(f"{message.name} is downloaded.", timeout=4)
        self.action_reload()
        if self.use_after_pull:
            self._use(message.name)

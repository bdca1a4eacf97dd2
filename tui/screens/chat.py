"""Chat: a multi-turn conversation, each answer streamed with its sources coloured."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from ..export import describe_answer
from ..host import error_text
from ..messages import AnswerDone, AnswerFailed
from ..streaming import AnswerRequest
from ..widgets import MessageView, PromptInput
from .base import ModeScreen

WELCOME = (
    "Ask anything. Each word is coloured by the model that wrote it: the base model "
    "(diversity) or the aligned one (quality). F7/F8 turn the dial, ctrl+t changes the "
    "router, F1 lists every key."
)


def made_with(settings, pair: str | None) -> dict:
    """How an answer is made: stored before its first token (all that an answer cut off
    by quitting keeps), and again, with how it went, in `answer_meta`."""
    fields = ("router", "gamma", "seed", "temperature")
    return {name: getattr(settings, name) for name in fields} | {"pair": pair}


def answer_meta(result) -> dict:
    """What is stored with an answer: how it was made and how it went."""
    return made_with(result.settings, result.pair) | {
        "finish_reason": result.finish_reason,
        "stats": result.stats.to_dict(),
    }


class ChatScreen(ModeScreen):
    MODE_TITLE = "Chat"
    BINDINGS = [
        Binding("escape", "stop", "Stop", priority=True),
        Binding("ctrl+r", "regenerate", "Regenerate", priority=True),
        Binding("ctrl+e", "edit_last", "Edit last", priority=True),
        Binding("ctrl+y", "copy_last", "Copy answer", priority=True),
        Binding("ctrl+n", "new_chat", "New chat", priority=True),
    ]

    def __init__(self):
        super().__init__()
        self.session_id: int | None = None
        self.answer_view: MessageView | None = None

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="conversation"):
            yield Static(WELCOME, id="welcome")
        yield PromptInput("Message (Enter sends, ctrl+j new line)", id="prompt")

    def on_mount(self) -> None:
        self.query_one("#conversation").anchor()
        self.query_one("#prompt").focus()

    @property
    def views(self) -> list[MessageView]:
        return list(self.query_one("#conversation").query(MessageView))

    def conversation(self) -> list[dict]:
        return [{"role": v.role, "content": v.text} for v in self.views if v.text]

    # --- sending ----------------------------------------------------------------------

    def on_prompt_input_submitted(self, message: PromptInput.Submitted) -> None:
        text = message.text.strip()
        if not text:
            return
        if self.job is not None:
            self.notify("An answer is still coming: Esc stops it.", severity="warning")
            return
        if self.host.pair is None:
            self.notify(self.host.pair_missing(), severity="warning")
            return
        message.input.clear()
        self._ensure_session(text)
        view = MessageView("user", [("user", text)])
        view.record_id = self.store.add_message(self.session_id, "user", text)
        self._mount(view)
        self._answer()

    def _ensure_session(self, title: str) -> None:
        if self.session_id is None:
            self.session_id = self.store.create_session(
                "chat", title, self.host.pair_label, self.host.system
            )

    def _answer(self, settings=None) -> None:
        settings = settings or self.host.settings
        if settings.seed is None:  # drawn here, so an answer cut off by quitting keeps it
            settings = settings.with_changes(seed=self.host.random.randrange(2**31))
        request = AnswerRequest(self.conversation(), settings, self.host.system)
        if self.start_answers([request]) is None:
            return
        view = MessageView("assistant", complete=False, show_sources=self.host.show_sources)
        view.record_id = self.store.add_message(
            self.session_id,
            "assistant",
            "",
            meta=made_with(settings, self.host.pair_label),
            complete=False,
        )
        self.answer_view = view
        self._mount(view)

    def _mount(self, view: MessageView) -> None:
        for welcome in self.query("#welcome"):
            welcome.remove()
        self.query_one("#conversation").mount(view)

    # --- streaming --------------------------------------------------------------------

    def show_tokens(self, slot: int, events: list) -> None:
        view = self.answer_view
        if view is None:
            return
        view.sourced.extend(events)
        # Stored before it is shown: a kill never loses what was on screen.
        self.store.update_message(view.record_id, view.text, view.sourced.runs)
        view.refresh_body()

    def on_answer_done(self, message: AnswerDone) -> None:
        view = self.answer_view
        if not self.is_current(message) or view is None:
            return
        self.drain()
        self.note_result(message)
        meta = answer_meta(message.result)
        if not view.text and message.result.finish_reason == "cancelled":
            self._discard(view)
            return
        self.store.update_message(
            view.record_id, view.text, view.sourced.runs, meta=meta, complete=True
        )
        view.finish(describe_answer(meta))

    def on_answer_failed(self, message: AnswerFailed) -> None:
        view = self.answer_view
        if not self.is_current(message) or view is None:
            return
        if not view.text:
            # Nothing was answered: the message leaves the conversation (every later
            # prompt would carry it, and fail the same way) and goes back in the box.
            views = self.views
            asked = views[views.index(view) - 1] if view in views else None
            self._discard(view)
            if asked is not None and asked.role == "user":
                self._discard(asked)
                self.query_one("#prompt", PromptInput).put_back(asked.text)
            error = error_text(message.error)
            self.notify(
                f"{error}\nYour message is back in the box.",
                title="Could not answer",
                severity="error",
                timeout=10,
            )
        else:
            self.notify(
                error_text(message.error), title="Could not answer", severity="error", timeout=10
            )
            meta = {"finish_reason": "error"}
            self.store.update_message(
                view.record_id, view.text, view.sourced.runs, meta=meta, complete=True
            )
            view.finish("error")

    def job_finished(self) -> None:
        view = self.answer_view
        if view is not None and not view.complete:  # stopped before it began: no trace
            self._discard(view)
        self.answer_view = None

    def _discard(self, view: MessageView):
        """Forget a message, in the store and on screen (await the result to be sure it
        is off the screen before the conversation is read again)."""
        self.store.delete_messages([view.record_id])
        if view is self.answer_view:
            self.answer_view = None
        return view.remove()

    # --- actions ----------------------------------------------------------------------

    def _busy(self) -> bool:
        if self.job is not None:
            self.notify("Wait for the answer or stop it with Esc first.", severity="warning")
        return self.job is not None

    async def action_regenerate(self) -> None:
        """Draw the last answer again; with a fixed seed, the next seed (else it would
        come out the same)."""
        views = self.views
        if self._busy() or not views:
            return
        settings = self.host.settings
        if views[-1].role == "assistant":
            seed = self.store.messages_meta(views[-1].record_id).get("seed")
            if settings.seed is not None and seed is not None:
                settings = settings.with_changes(seed=seed + 1)
            await self._discard(views[-1])
        self._answer(settings)

    async def action_edit_last(self) -> None:
        views = self.views
        users = [i for i, v in enumerate(views) if v.role == "user"]
        if self._busy() or not users:
            return
        removed = views[users[-1] :]
        for view in removed:
            await self._discard(view)
        self.query_one("#prompt", PromptInput).put_back(removed[0].text)
        self.notify("Your last message is back in the box: edit it and press Enter.", timeout=3)

    def action_copy_last(self) -> None:
        answers = [v for v in self.views if v.role == "assistant" and v.text]
        if not answers:
            self.notify("There is no answer to copy yet.", severity="warning", timeout=3)
            return
        answers[-1].action_copy()

    async def action_new_chat(self) -> None:
        self.action_stop()
        self.job, self.answer_view, self.session_id, self.last_stats = None, None, None, None
        self.told_fit = False
        conversation = self.query_one("#conversation")
        await conversation.remove_children()
        await conversation.mount(Static(WELCOME, id="welcome"))
        self.refresh_status()
        self.query_one("#prompt").focus()

    async def load_session(self, session, messages) -> None:
        """Show a stored chat and continue it."""
        await self.action_new_chat()
        self.session_id = session.id
        self.host.system = session.system
        for record in messages:
            if record.role == "assistant" and not record.content:
                continue
            runs = record.segments if record.role == "assistant" else [("user", record.content)]
            title = describe_answer(record.meta) + ("" if record.complete else " · interrupted")
            view = MessageView(record.role, runs, title=title, show_sources=self.host.show_sources)
            view.record_id = record.id
            self._mount(view)

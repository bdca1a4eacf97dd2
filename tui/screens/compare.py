"""Compare: one prompt answered by the aligned model alone and by the collaboration, in a
random order and unlabelled; two votes (quality, originality), then the labels appear.
Votes are stored, and the screen shows the win rates over every vote so far."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static

from ..export import describe_answer
from ..host import error_text
from ..messages import AnswerDone, AnswerFailed
from ..streaming import AnswerRequest
from ..tally import ALIGNED, COLLABORATION, TIE, tally
from ..widgets import MessageView, PromptInput, VotePanel
from .base import ModeScreen
from .chat import answer_meta

SLOTS = ("A", "B")


class CompareScreen(ModeScreen):
    MODE_TITLE = "Compare"
    BINDINGS = [
        Binding("escape", "stop", "Stop", priority=True),
        Binding("ctrl+n", "new_session", "New session", priority=True),
    ]

    def __init__(self):
        super().__init__()
        self.session_id: int | None = None
        self.round: dict | None = None  # prompt, seed, arms, views, metas, settings
        self.revealed = False

    def compose_body(self) -> ComposeResult:
        yield PromptInput("A prompt for a blind comparison (Enter)", id="cmp-prompt")
        with Horizontal(id="answers"):
            for slot in SLOTS:
                yield VerticalScroll(id=f"answer-{slot.lower()}", classes="answer-column")
        yield VotePanel(id="vote")
        yield Static(id="summary")

    def on_mount(self) -> None:
        self.query_one(VotePanel).close(
            "Two answers will appear, A and B, in random order: the aligned model alone, "
            "and the collaboration. Vote, then see which was which."
        )
        self.refresh_summary()
        self.query_one("#cmp-prompt").focus()

    # --- a round ----------------------------------------------------------------------

    def on_prompt_input_submitted(self, message: PromptInput.Submitted) -> None:
        text = message.text.strip()
        if not text:
            return
        if self.job is not None or self.query_one(VotePanel).asking:
            self.notify("Finish this comparison first (vote, or Esc to stop).", severity="warning")
            return
        if self.host.pair is None:
            self.notify(self.host.pair_missing(), severity="warning")
            return
        settings = self.host.settings
        seed = settings.seed if settings.seed is not None else self.host.random.randrange(2**31)
        arms = [COLLABORATION, ALIGNED]
        self.host.random.shuffle(arms)
        arm_settings = {
            COLLABORATION: settings.with_changes(seed=seed),
            ALIGNED: settings.with_changes(router="aligned", seed=seed),
        }
        messages = [{"role": "user", "content": text}]
        requests = [AnswerRequest(messages, arm_settings[arm], self.host.system) for arm in arms]
        if self.start_answers(requests) is None:
            return
        if self.session_id is None:
            self.session_id = self.store.create_session(
                "compare", text, self.host.pair_label, self.host.system
            )
        self.store.add_message(self.session_id, "user", text)
        self.revealed = False
        self.round = {"prompt": text, "seed": seed, "arms": arms, "settings": settings}
        self.round["views"] = [self._start_view(slot, arm) for slot, arm in zip(SLOTS, arms)]
        self.round["metas"] = [None, None]
        self.query_one(VotePanel).close("Answering… the vote opens when both answers are in.")

    def _start_view(self, slot: str, arm: str) -> MessageView:
        # Plain text before the vote as after it (when colours show who wrote what), so
        # the reveal does not reflow the answers the user just read.
        view = MessageView(
            "assistant",
            title=f"Answer {slot}",
            name="",
            complete=False,
            show_sources=False,
            markdown=False,
        )
        view.record_id = self.store.add_message(
            self.session_id, "assistant", "", meta={"label": slot, "arm": arm}, complete=False
        )
        column = self.query_one(f"#answer-{slot.lower()}", VerticalScroll)
        column.remove_children()
        column.mount(view)
        return view

    def _view(self, message) -> MessageView | None:
        if not self.is_current(message) or self.round is None:
            return None
        self.drain()
        return self.round["views"][message.slot]

    def show_tokens(self, slot: int, events: list) -> None:
        if self.round is None:
            return
        view = self.round["views"][slot]
        view.sourced.extend(events)
        self.store.update_message(view.record_id, view.text, view.sourced.runs)
        view.refresh_body()

    def on_answer_done(self, message: AnswerDone) -> None:
        view = self._view(message)
        if view is None:
            return
        slot, arm = SLOTS[message.slot], self.round["arms"][message.slot]
        meta = answer_meta(message.result) | {"label": slot, "arm": arm}
        self.round["metas"][message.slot] = meta
        self.store.update_message(
            view.record_id, view.text, view.sourced.runs, meta=meta, complete=True
        )
        view.finish(f"Answer {slot}")  # no router, no % base: that would give it away

    def on_answer_failed(self, message: AnswerFailed) -> None:
        view = self._view(message)
        if view is not None:  # it ended, in failure: not an answer stopped before it began
            slot, arm = SLOTS[message.slot], self.round["arms"][message.slot]
            meta = {"label": slot, "arm": arm, "finish_reason": "error"}
            self.round["metas"][message.slot] = meta
            self.store.update_message(
                view.record_id, view.text, view.sourced.runs, meta=meta, complete=True
            )
            view.finish(f"Answer {slot} · failed")
        self.notify(
            error_text(message.error), title="Could not answer", severity="error", timeout=15
        )

    def job_finished(self) -> None:
        metas = self.round["metas"] if self.round else [None]
        if self.round is not None:
            for slot, arm, view, meta in zip(SLOTS, self.round["arms"], self.round["views"], metas):
                if meta is None:  # stopped before it began: it never ended on its own
                    stopped = {"label": slot, "arm": arm, "finish_reason": "cancelled"}
                    self.store.update_message(
                        view.record_id, view.text, view.sourced.runs, meta=stopped, complete=True
                    )
                    view.finish(f"Answer {slot} · stopped")
        if all(m is not None and m["finish_reason"] != "cancelled" for m in metas):
            self.query_one(VotePanel).ask()
        else:
            self.query_one(VotePanel).close("Stopped: no vote this time. Enter a prompt again.")

    # --- voting -----------------------------------------------------------------------

    def on_vote_panel_voted(self, message: VotePanel.Voted) -> None:
        arms = self.round["arms"]

        def winner(choice: str) -> str:
            return TIE if choice == "tie" else arms[SLOTS.index(choice)]

        settings = self.round["settings"]
        self.store.add_vote(
            self.session_id,
            self.round["prompt"],
            shown_first=arms[0],
            quality=winner(message.quality),
            originality=winner(message.originality),
            router=settings.router,
            gamma=settings.gamma,
            seed=self.round["seed"],
        )
        self.reveal()
        self.refresh_summary()
        self.query_one("#cmp-prompt").focus()

    def reveal(self) -> None:
        self.revealed = True
        lines = []
        for slot, arm, view, meta in zip(
            SLOTS, self.round["arms"], self.round["views"], self.round["metas"]
        ):
            who = "the collaboration" if arm == COLLABORATION else "aligned alone"
            view.set_title(f"Answer {slot}: {who} · {describe_answer(meta)}")
            lines.append(f"{slot} was {who}")
        self.apply_show_sources()
        self.query_one(VotePanel).close("Vote saved. " + "; ".join(lines) + ".")

    def apply_show_sources(self) -> None:
        for view in self.query(MessageView):
            view.set_show_sources(self.revealed and self.host.show_sources)
        self.show_legend(self.host.show_sources)

    def refresh_summary(self) -> None:
        votes = self.store.votes() if self.store is not None else []
        quality = tally(v.quality for v in votes)
        originality = tally(v.originality for v in votes)
        self.query_one("#summary", Static).update(
            f"All votes — quality: {quality.summary()}\n"
            f"            originality: {originality.summary()}"
        )

    def action_new_session(self) -> None:
        self.action_stop()
        self.job, self.session_id, self.round, self.revealed = None, None, None, False
        for column in self.query(".answer-column"):
            column.remove_children()
        self.query_one(VotePanel).close("New comparison session: enter a prompt.")
        self.refresh_status()

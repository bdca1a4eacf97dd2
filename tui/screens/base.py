"""What every mode screen shares: the status line on top, the key bar below, and running
answers in a worker thread (one request at a time per screen)."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import LoadingIndicator

from ..bars import KeyBar, StatusBar
from ..host import HostedMixin
from ..messages import AnswerDone, JobFinished, TokensArrived
from ..streaming import AnswerRequest, Job, run_answers
from ..widgets import MessageView, PromptInput, legend

# What each mode's running job is, as another screen waiting for it says it.
JOB_NAMES = {
    "chat": ("the chat answer", "F2"),
    "brainstorm": ("the brainstorm answers", "F3"),
    "compare": ("the comparison's answers", "F4"),
}


class ModeScreen(HostedMixin, Screen):
    MODE_TITLE = ""

    def __init__(self):
        super().__init__()
        self.job: Job | None = None
        self.last_stats = None  # GenerationStats of the last finished answer
        self.told_fit = False  # the user knows the oldest turns leave the prompt

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield LoadingIndicator(id="pair-loading")
        yield from self.compose_body()
        yield KeyBar(id="keys")

    def compose_body(self) -> ComposeResult:
        return iter(())

    @property
    def store(self):
        return self.host.store

    # --- status -----------------------------------------------------------------------

    def on_screen_resume(self) -> None:
        self.refresh_status()
        self.apply_show_sources()

    def refresh_status(self) -> None:
        parts = self.host.status_parts(self.MODE_TITLE, self.last_stats)
        for bar in self.query(StatusBar):  # none before the screen is first shown
            bar.show(parts)
        for indicator in self.query("#pair-loading"):
            indicator.display = self.host.pair_loading

    def apply_show_sources(self) -> None:
        for view in self.query(MessageView):
            view.set_show_sources(self.host.show_sources)
        self.show_legend(self.host.show_sources)

    def show_legend(self, show_sources: bool) -> None:
        """The colour key sits in the prompt box's frame, where it costs no line."""
        for box in self.query(PromptInput):
            box.border_subtitle = legend(show_sources).markup

    # --- answers ----------------------------------------------------------------------

    def start_answers(self, requests: list[AnswerRequest]) -> Job | None:
        """Run requests in a worker thread; None (and a notice) when no pair is loaded."""
        pair = self.host.pair
        if pair is None or self.host.pair_loading:  # never start on a pair about to close
            self.notify(self.host.pair_missing(), severity="warning")
            return None
        self.job = Job()
        self._run(pair, self.job, requests)
        self.refresh_status()
        waiting = self.waiting_for()
        if waiting is not None:
            self.notify(waiting, title="Waiting", timeout=8)
        self.call_after_refresh(self.show_waiting)  # views mounted with the job, too
        return self.job

    def waiting_for(self) -> str | None:
        """What this screen's answers wait for. Answers of every screen are decoded
        together in the pair's one batch, so they wait only when the batch is full (its
        sequences, or the context's room, taken by another screen's answers): then say
        whose and how to stop them. None when nothing waits."""
        loop = getattr(self.app.pair, "loop", None)
        if loop is None or loop.waiting == 0:
            return None
        for name, (what, key) in JOB_NAMES.items():
            screen = self.app.get_screen(name)
            if screen is not self and screen.job is not None:
                return (
                    f"waiting for room in the batch: {what} is being written ({key}, then "
                    "Esc, stops it; Esc here stops these)"
                )
        return None

    def show_waiting(self) -> None:
        """Say on each unfinished answer what it waits for (or nothing, once it runs)."""
        waiting = self.waiting_for() if self.job is not None else None
        for view in self.query(MessageView):
            view.set_waiting(waiting)

    @work(thread=True, group="answers")
    def _run(self, pair, job: Job, requests: list[AnswerRequest]) -> None:
        run_answers(pair, job, requests, self.post_message)

    def is_current(self, message) -> bool:
        return self.job is not None and message.job == self.job.id

    def on_tokens_arrived(self, message: TokensArrived) -> None:
        if self.is_current(message):
            self.drain()

    def drain(self) -> None:
        """Show every token event waiting in the current job's outbox."""
        if self.job is not None:
            for slot, events in self.job.take_events():
                self.show_tokens(slot, events)

    def show_tokens(self, slot: int, events: list) -> None:
        """Store, then show, new tokens of answer `slot` (override)."""

    def action_stop(self) -> None:
        if self.job is not None:
            self.job.cancel()
            # The engine stops before its next token; reading a long prompt comes first.
            for view in self.query(MessageView):
                view.mark_stopping()

    def note_result(self, message: AnswerDone) -> None:
        self.last_stats = message.result.stats
        fit_notes = [n for n in message.result.notes if "no longer fits" in n]
        if fit_notes and not self.told_fit:  # once per conversation, not at every turn
            self.told_fit = True
            self.notify(fit_notes[0], title="Long conversation", timeout=10)
        if message.result.finish_reason == "context":
            self.notify(
                "The context window is full, so the answer stopped.",
                title="Context full",
                severity="warning",
                timeout=8,
            )

    def on_job_finished(self, message: JobFinished) -> None:
        if self.is_current(message):
            self.job = None
            self.show_waiting()
            self.job_finished()
            self.refresh_status()
            for name in JOB_NAMES:  # a screen that waited for this job now runs
                screen = self.app.get_screen(name)
                if screen is not self and screen.job is not None:
                    screen.show_waiting()

    def job_finished(self) -> None:
        """Called when the current request is done (override to react)."""

"""Brainstorm: one prompt, N answers with seeds seed..seed+N-1, decoded together and
shown as cards that fill in side by side, with a live measure of how different they
are. Favourites are kept when a new round is drawn; "more like this" / "more different"
nudge gamma and draw again."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from ..dial import describe_dial, nudge_diversity
from ..diversity import measure_diversity
from ..export import describe_answer
from ..host import error_text
from ..messages import AnswerDone, AnswerFailed
from ..streaming import AnswerRequest
from ..widgets import AnswerCard, DiversityMeter, PromptInput
from .base import ModeScreen
from .chat import answer_meta

HINT = (
    "One prompt, several answers drawn with the current router. Tab moves to a card; "
    "f keeps it. ctrl+l draws more like these, ctrl+g more different."
)


class BrainstormScreen(ModeScreen):
    MODE_TITLE = "Brainstorm"
    BINDINGS = [
        Binding("escape", "stop", "Stop", priority=True),
        Binding("ctrl+l", "nudge(-1)", "More alike", priority=True),
        Binding("ctrl+g", "nudge(1)", "More different", priority=True),
        Binding("ctrl+n", "new_set", "New prompt", priority=True),
    ]

    def __init__(self):
        super().__init__()
        self.session_id: int | None = None
        self.prompt_text: str | None = None
        self.round_cards: list[AnswerCard] = []
        self.next_seed: int | None = None

    def compose_body(self) -> ComposeResult:
        yield PromptInput("A prompt for several answers (Enter draws them)", id="bs-prompt")
        yield DiversityMeter(id="diversity")
        cards = VerticalScroll(id="cards")
        cards.can_focus = False  # Tab goes from the prompt straight to the cards
        with cards:
            yield Static(HINT, id="bs-hint")

    def on_mount(self) -> None:
        self.query_one(DiversityMeter).show(None)
        self.query_one("#bs-prompt").focus()

    @property
    def cards(self) -> list[AnswerCard]:
        return list(self.query(AnswerCard))

    # --- drawing a round --------------------------------------------------------------

    async def on_prompt_input_submitted(self, message: PromptInput.Submitted) -> None:
        text = message.text.strip()
        if not text or self._busy():
            return
        if self.host.pair is None:
            self.notify(self.host.pair_missing(), severity="warning")
            return
        await self.action_new_set()
        self.prompt_text = text
        self.session_id = self.store.create_session(
            "brainstorm", text, self.host.pair_label, self.host.system
        )
        self.store.add_message(self.session_id, "user", text)
        await self.draw_round()

    async def draw_round(self) -> None:
        """Replace the cards that are not favourites with N new answers."""
        if self.host.pair is None:
            self.notify(self.host.pair_missing(), severity="warning")
            return
        settings, n = self.host.settings, self.host.brainstorm_n
        if self.next_seed is None:
            self.next_seed = (
                settings.seed if settings.seed is not None else self.host.random.randrange(2**31)
            )
        seeds = [self.next_seed + i for i in range(n)]
        self.next_seed += n
        # n answers decoded together: the cards fill in side by side as tokens arrive
        request = AnswerRequest(
            [{"role": "user", "content": self.prompt_text}],
            settings.with_changes(seed=seeds[0]),
            self.host.system,
            n=n,
        )
        await self._drop_unkept_cards()
        kept = len(self.cards)
        for number, card in enumerate(self.cards, start=1):  # as a reopened session shows them
            card.renumber(number)
        self.round_cards = []
        for i, seed in enumerate(seeds):
            card = AnswerCard(kept + i + 1, seed, show_sources=self.host.show_sources)
            card.details = describe_dial(settings)
            card.record_id = self.store.add_message(
                self.session_id, "assistant", "", meta={"seed": seed}, complete=False
            )
            self.round_cards.append(card)
        for hint in self.query("#bs-hint"):
            hint.remove()
        await self.query_one("#cards").mount_all(self.round_cards)
        self.start_answers([request])  # after the cards exist: tokens go straight to them

    async def _drop_unkept_cards(self) -> None:
        dropped = [card for card in self.cards if not card.favourite]
        self.store.delete_messages([card.record_id for card in dropped])
        await self.query_one("#cards").remove_children(dropped)

    # --- streaming --------------------------------------------------------------------

    def _card(self, message) -> AnswerCard | None:
        if not self.is_current(message) or message.slot >= len(self.round_cards):
            return None
        self.drain()
        return self.round_cards[message.slot]

    def show_tokens(self, slot: int, events: list) -> None:
        if slot >= len(self.round_cards):
            return
        card = self.round_cards[slot]
        card.sourced.extend(events)
        self.store.update_message(card.record_id, card.text, card.sourced.runs)
        card.refresh_body()
        self.refresh_diversity()  # as the answers grow, not only when they end

    def on_answer_done(self, message: AnswerDone) -> None:
        card = self._card(message)
        if card is None:
            return
        self.note_result(message)
        meta = answer_meta(message.result)
        self.store.update_message(
            card.record_id, card.text, card.sourced.runs, meta=meta, complete=True
        )
        card.details = describe_answer(meta).replace(f" · seed {card.seed}", "")
        card.finish("")
        self.refresh_diversity()

    def on_answer_failed(self, message: AnswerFailed) -> None:
        card = self._card(message)
        if card is not None:
            card.details = "failed"
            card.finish("")
        self.notify(
            error_text(message.error), title="Could not answer", severity="error", timeout=15
        )

    def job_finished(self) -> None:
        for card in self.round_cards:
            if not card.complete:  # stopped before it started
                card.details = card.details + " · stopped"
                card.finish("")
                stopped = {"seed": card.seed, "finish_reason": "cancelled"}
                self.store.update_message(
                    card.record_id, card.text, card.sourced.runs, meta=stopped, complete=True
                )
        self.refresh_diversity()

    def refresh_diversity(self) -> None:
        texts = [card.text for card in self.cards if card.text]
        self.query_one(DiversityMeter).show(measure_diversity(texts) if texts else None)

    # --- actions ----------------------------------------------------------------------

    def on_answer_card_favourite_toggled(self, message: AnswerCard.FavouriteToggled) -> None:
        self.store.set_favourite(message.card.record_id, message.card.favourite)

    async def action_nudge(self, steps: int) -> None:
        """Move gamma one step towards the base (more different) or aligned (more alike)."""
        before = self.host.settings
        after = nudge_diversity(before, steps)
        if after == before:
            self.notify(
                f"{before.router} cannot go further that way; ctrl+t picks another router.",
                severity="warning",
                timeout=4,
            )
            return
        self.host.set_settings(after)
        if self.prompt_text is not None and not self._busy():
            await self.draw_round()

    async def action_new_set(self) -> None:
        self.action_stop()
        self.job, self.session_id, self.prompt_text, self.next_seed = None, None, None, None
        self.round_cards = []
        await self.query_one("#cards").remove_children(self.cards)
        self.query_one(DiversityMeter).show(None)
        self.refresh_status()

    def _busy(self) -> bool:
        if self.job is not None:
            self.notify("Answers are still coming: Esc stops them.", severity="warning")
        return self.job is not None

    async def load_session(self, session, messages) -> None:
        """Show a stored brainstorm set; Enter on a new prompt or ctrl+g/l continue it."""
        await self.action_new_set()
        self.session_id, self.prompt_text = session.id, None
        prompts = [m.content for m in messages if m.role == "user"]
        if prompts:
            self.prompt_text = prompts[0]
            self.query_one("#bs-prompt", PromptInput).text = prompts[0]
        answers = [m for m in messages if m.role == "assistant" and m.content]
        cards = []
        for number, record in enumerate(answers, start=1):
            seed = record.meta.get("seed")
            card = AnswerCard(
                number,
                seed,
                record.segments,
                details=describe_answer(record.meta).replace(f" · seed {seed}", ""),
                complete=record.complete,
                favourite=record.favourite,
                show_sources=self.host.show_sources,
            )
            card.record_id = record.id
            cards.append(card)
        for hint in self.query("#bs-hint"):
            hint.remove()
        await self.query_one("#cards").mount_all(cards)
        seeds = [r.meta.get("seed") for r in answers if r.meta.get("seed") is not None]
        self.next_seed = max(seeds) + 1 if seeds else None
        self.refresh_diversity()

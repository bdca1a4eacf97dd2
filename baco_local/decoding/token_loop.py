"""The decode loop: at each step, route, draw, accept; one token for both models.

Read `Generation._steps` top to bottom: it is the whole method. Around it:
- each role reads the conversation in its own prompt format (`LoadedPair`);
- the router sees the base model's signals at word starts only (`routers`);
- the chosen model's logits are sampled in numpy (`drawing`, `sampling`);
- accepted tokens go to both streams, which catch up lazily (`scheduler`);
- text is assembled UTF-8 safe, with stop strings held back (`text_stream`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import threading
import time
from collections.abc import Iterator

from ..core.drawing import Drawer
from ..core.events import GenerationStats, Result, TokenEvent, known
from ..core.routers import ALIGNED, BASE, MIX, Signals, get_router
from ..core.settings import GenerationSettings
from ..core.token_roles import TokenRoles
from ..errors import Cancelled
from ..pairs.loading import LoadedPair
from ..pairs.prompt_formats import Message
from .prompts import prepare_prompts, text_stream_for
from .scheduler import Scheduler


class Generation:
    """One answer being generated. Iterate it for TokenEvents; then read `.result`.

    Only one Generation may run on a pair at a time (the pair's streams are its state).
    `cancel()` may be called from any thread: the loop stops before its next token and
    keeps what it produced (finish_reason "cancelled").
    prefetch: at each step, also catch up the model that the step may need, in parallel
    with the one it surely needs (fast on >= 2 cores); False evaluates strictly on demand.
    ignore_end: generate exactly max_tokens, past end-of-turn tokens and stop strings
    (for benchmarks).
    """

    def __init__(
        self,
        pair: LoadedPair,
        messages: tuple[Message, ...],
        settings: GenerationSettings,
        *,
        raw: bool = False,
        roles: TokenRoles,
        scheduler: Scheduler,
        prefetch: bool = True,
        ignore_end: bool = False,
    ):
        if settings.seed is None:
            settings = settings.with_changes(seed=random.SystemRandom().randrange(2**31))
        self.pair = pair
        self.settings = settings
        self.router = get_router(settings.router)
        self.roles = roles
        self.scheduler = scheduler
        self.prefetch = prefetch
        self.streams = pair.streams
        self._cancel = threading.Event()
        self.result: Result | None = None
        self._prompts, self._fit_note = prepare_prompts(pair, messages, raw, settings.max_tokens)
        self._ignore_end = ignore_end
        self._end_ids = frozenset() if raw else pair.end_token_ids()
        self._text = text_stream_for(pair, settings, raw, ignore_end)
        self._drawer = Drawer(pair.n_vocab, settings, self.router, pair.copy_guards.get(ALIGNED))
        self._events: list[TokenEvent] = []
        self._accepted = 0  # tokens accepted so far (some may still be held back)

    def cancel(self) -> None:
        self._cancel.set()

    def __iter__(self) -> Iterator[TokenEvent]:
        if self.result is not None:
            yield from self.result.tokens
            return
        started = time.perf_counter()
        self._first_token_at = None
        self._model_seconds_at_first = self.scheduler.seconds
        finish = "cancelled"
        self.scheduler.stop_event = self._cancel  # a long prompt stops between chunks
        try:
            for event_or_finish in self._steps():
                if isinstance(event_or_finish, str):
                    finish = event_or_finish
                    break
                for event in event_or_finish:
                    self._events.append(event)
                    yield event
            for event in self._release(self._text.flush()):
                self._events.append(event)
                yield event
        except Cancelled:
            pass  # stopped while a prompt was being read
        finally:
            self.scheduler.stop_event = None
            self._settle_quietly()
            if finish == "cancelled":  # interrupted: keep held-back text too
                self._events.extend(self._release(self._text.flush()))
            self._finish(finish, started, self._first_token_at)

    def _settle_quietly(self) -> None:
        # Never leave a decode running on a stream the next generation will use; an
        # error from it matters less than the one that may be propagating now.
        with contextlib.suppress(Exception):
            self.scheduler.settle()

    def run(self) -> Result:
        """Generate to the end and return the result."""
        for _ in self:
            pass
        return self.result

    # --- the loop ----------------------------------------------------------------------

    def _steps(self):
        """Yields lists of events ready to show, then the finish reason (a str)."""
        base, aligned = self.streams[BASE], self.streams[ALIGNED]
        # Each model reads the conversation in its own format.
        for role in (BASE, ALIGNED):
            self.pair.start(role, self._prompts[role])
        owner = None  # the model that started the current word
        for _ in range(self.settings.max_tokens):
            if self._cancel.is_set():
                return
            # Catch up what this step needs (and, with prefetch, what it may need); the
            # base model first, so routing can start while the other is still decoding.
            self.scheduler.begin(self._likely_needed(owner))
            # Route at a word start, then draw the token from the chosen model.
            token, source, decision, signals = self._choose(owner)
            # The step's decodes are over (the scheduler times them to pick its plan).
            self.scheduler.settle()
            self.scheduler.end_step()
            # An end-of-turn token ends the answer; it is not shown.
            if self._is_end(token):
                yield "eog"
                return
            # Show the token; text that may begin a stop string waits.
            event = self._event(token, source, decision, signals)
            yield self._release(self._text.feed(event, self.pair.aligned_model.piece(token)))
            if self._text.stopped_by is not None:
                yield "stop"
                return
            # Both models read the token (they evaluate it when next needed).
            if max(base.n_past, aligned.n_past) + 1 > min(base.n_ctx, aligned.n_ctx):
                yield "context"
                return
            base.push(token)
            aligned.push(token)
            self._drawer.accept(token)
            owner = source
        yield "length"

    def _choose(self, owner: str | None) -> tuple[int, str, str | None, Signals | None]:
        """(token, source, router decision or None, signals or None) for this step.

        The owner of the current word draws first; a draw that continues the word is
        kept without routing. At a word start the router decides; if the chosen model's
        draw would continue the owner's word, the switch waits for the next word.
        The first `lead` tokens come from the aligned model without routing.
        """
        if self._leading():
            return self._draw(ALIGNED), ALIGNED, None, None
        # Measure the base now: it is ready first, so this overlaps the other model's decode.
        measured = self._measure_base()
        candidate = self._draw(owner) if owner else None
        if candidate is not None and not self.roles.starts_word(candidate):
            return candidate, owner, None, None
        signals = self._drawer.signals(measured)
        decision = self.router.decide(signals, self.settings.gamma)
        if decision == owner:
            return candidate, owner, decision, signals
        token = self._draw(decision)
        if candidate is not None and not self.roles.starts_word(token):
            return candidate, owner, decision, signals
        return token, decision, decision, signals

    # --- steps of the loop -------------------------------------------------------------

    def _leading(self) -> bool:
        """True while the aligned model writes the answer's opening (the `lead` tokens)."""
        return self._accepted < self.settings.lead and self.router.name != BASE

    def _likely_needed(self, owner: str | None) -> list:
        if self._accepted == 0 and self._leading():
            # The first token is the aligned model's alone: the base reads its prompt
            # later, so the first token comes as fast as with one model.
            return [self.streams[ALIGNED]]
        names = {BASE, ALIGNED} if owner == MIX else {owner} if owner else set()
        if self.router.reads_base:
            names.add(BASE)
        if owner is None or self.prefetch:
            names |= self._possible_sources()
        return [self.streams[n] for n in (BASE, ALIGNED) if n in names]

    def _possible_sources(self) -> set[str]:
        if self.router.name in (BASE, ALIGNED):
            return {self.router.name}
        return {BASE, ALIGNED}

    def _draw(self, source: str) -> int:
        if source == MIX:
            self.scheduler.catch_up([self.streams[BASE], self.streams[ALIGNED]])
            return self._drawer.draw_mixture(
                self.streams[BASE].logits(), self.streams[ALIGNED].logits()
            )
        stream = self.streams[source]
        self.scheduler.wait(stream)  # or a lazy catch-up, when the step did not prefetch it
        return self._drawer.draw(stream.logits(), guarded=source == ALIGNED)

    def _measure_base(self):
        if not self.router.reads_base:
            return None
        self.scheduler.wait(self.streams[BASE])
        return self._drawer.measure(self.streams[BASE].logits(), self.roles)

    def _is_end(self, token: int) -> bool:
        if self._ignore_end:
            return False
        pair = self.pair
        return (
            token in self._end_ids
            or pair.base_model.is_eog(token)
            or pair.aligned_model.is_eog(token)
        )

    def _event(self, token: int, source: str, decision, signals) -> TokenEvent:
        self._accepted += 1
        if self._first_token_at is None:
            self._first_token_at = time.perf_counter()
            self._model_seconds_at_first = self.scheduler.seconds
        return TokenEvent(
            self._accepted - 1,
            token,
            "",
            self._drawer.credit(token) if source == MIX else source,
            routed=decision is not None,
            decision=decision,
            top1_prob=None if signals is None else known(signals.top1_prob),
            entropy=None if signals is None else known(signals.entropy),
        )

    def _release(self, ready) -> list[TokenEvent]:
        return [_with_text(event, text) for event, text in ready]

    # --- prompts and the result --------------------------------------------------------

    def _finish(self, finish: str, started: float, first_token_at: float | None) -> None:
        end = time.perf_counter()
        events = tuple(self._events)
        stats = GenerationStats(
            tokens=len(events),
            base_tokens=sum(e.source == BASE for e in events),
            prompt_tokens={role: len(p.tokens) for role, p in self._prompts.items()},
            ttft_seconds=(first_token_at or end) - started,
            decode_seconds=end - (first_token_at or end),
            routing_seconds=self._drawer.seconds,
            model_seconds=self.scheduler.seconds - self._model_seconds_at_first,
        )
        notes = [self._fit_note] if self._fit_note else []
        notes += [f"stopped: {finish}"] if finish == "context" else []
        self.result = Result(
            text="".join(e.text for e in events),
            tokens=events,
            finish_reason=finish,
            settings=self.settings,
            stats=stats,
            pair=self.pair.label,
            notes=tuple(self.pair.notes) + tuple(notes),
        )


def _with_text(event: TokenEvent, text: str) -> TokenEvent:
    return dataclasses.replace(event, text=text)

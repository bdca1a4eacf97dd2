"""One answer's own state in a loop that writes several: its seeds, text and events.

The batched loop (`batch_loop`) keeps one AnswerState per answer. A rule (`token_rule`,
`word_rule`) writes into it: it accepts tokens, which become TokenEvents released
through the answer's own TextStream (stop strings, UTF-8), and it decides when the
answer ends. Pure Python and numpy: no model is touched here.
"""

from __future__ import annotations

import dataclasses
import time

from ..core.drawing import PositionDraws, position_draws, random_streams, router_signals
from ..core.events import GenerationStats, Result, TokenEvent, known
from ..core.routers import BASE, Signals, get_router
from ..core.settings import GenerationSettings
from ..core.text_stream import TextStream
from ..core.token_roles import Role


class AnswerState:
    """Answer number `index` of the request, sequence `seq` of its batch, generated with
    `settings` (its own seed and router)."""

    def __init__(
        self,
        index: int,
        seq: int,
        settings: GenerationSettings,
        text: TextStream,
        end_ids: dict[str, frozenset[int]] | None = None,
        ignore_end: bool = False,
    ):
        self.index = index
        self.seq = seq
        self.settings = settings
        self.router = get_router(settings.router)
        self.text = text
        self.end_ids = end_ids or {}  # each model's end-of-turn marker ids (its format's)
        self.ignore_end = ignore_end  # run to max_tokens past every end (benchmarks)
        self._rng_sample, self._rng_route = random_streams(settings.seed)
        self.events: list[TokenEvent] = []
        self.ready: list[TokenEvent] = []  # released since the loop last took them
        self.accepted = 0
        self.finish: str | None = None
        self.first_token_at: float | None = None
        self.text_bytes = bytearray()  # every accepted piece, for the word loop's checks
        self.histories: dict[str, list[int]] = {}  # each model's answer tokens, at the end

    # --- randomness: two streams, so routing never shifts the sampler's draws ---------

    def u_sample(self) -> float:
        return float(self._rng_sample.random())

    def signals(self, measured: tuple[float, float, Role] | None) -> Signals:
        return router_signals(measured, float(self._rng_route.random()))

    def draws_at(self, position: int) -> PositionDraws:
        """The speculative loop's draws at answer position `position` (see position_draws)."""
        return position_draws(self.settings.seed, position)

    # --- tokens ------------------------------------------------------------------------

    def accept(
        self,
        token: int,
        piece: bytes,
        source: str,
        decision: str | None = None,
        signals: Signals | None = None,
    ) -> None:
        """Add a token of the answer; what can be shown goes to `ready`."""
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        event = TokenEvent(
            self.accepted,
            token,
            "",
            source,
            routed=decision is not None,
            decision=decision,
            top1_prob=None if signals is None else known(signals.top1_prob),
            entropy=None if signals is None else known(signals.entropy),
            answer=self.index,
        )
        self.accepted += 1
        self.text_bytes += piece
        self._release(self.text.feed(event, piece))

    @property
    def stopped(self) -> bool:
        """A stop string (or stop line) appeared: the answer is over."""
        return self.text.stopped_by is not None

    def end(self, finish: str) -> None:
        """The answer is over; text held back for a possible stop string comes out."""
        if self.finish is None:
            self.finish = finish
            self._release(self.text.flush())

    def take_ready(self) -> list[TokenEvent]:
        ready, self.ready = self.ready, []
        return ready

    def _release(self, pairs) -> None:
        for event, text in pairs:
            event = dataclasses.replace(event, text=text)
            self.events.append(event)
            self.ready.append(event)

    def result(
        self, pair_label: str, notes: tuple[str, ...], started: float, prompt_tokens: dict
    ) -> Result:
        end = time.perf_counter()
        first = self.first_token_at or end
        events = tuple(self.events)
        stats = GenerationStats(
            tokens=len(events),
            base_tokens=sum(e.source == BASE for e in events),
            prompt_tokens=prompt_tokens,
            ttft_seconds=first - started,
            decode_seconds=end - first,
        )
        extra = (f"stopped: {self.finish}",) if self.finish == "context" else ()
        return Result(
            text="".join(e.text for e in events),
            tokens=events,
            finish_reason=self.finish or "cancelled",
            settings=self.settings,
            stats=stats,
            pair=pair_label,
            notes=notes + extra,
        )

"""What every answer's rule shares in the batched loop: the pair, each role's sequences,
and the small operations a rule performs on them (push a token, hand a word over to the
other model as text, check the context). No decoding happens here: the loop decodes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ..backend import Sequences
from ..core.handover import complete_utf8, join_text, space_prefix_tokenizer
from ..core.routers import ALIGNED, BASE
from ..pairs.loading import LoadedPair
from .answer import AnswerState
from .draft_plan import DraftPlanner


@dataclass
class HandoverStats:
    """What passing words between two tokenizers cost (word-level pairs only)."""

    handovers: int = 0
    rollbacks: int = 0  # hand-overs that replaced tokens the model already held
    cache_rollbacks: int = 0  # ... among them, tokens already in its KV cache
    seconds: float = 0.0

    def minus(self, before: HandoverStats) -> HandoverStats:
        """What happened since `before` (a copy taken then)."""
        return HandoverStats(
            self.handovers - before.handovers,
            self.rollbacks - before.rollbacks,
            self.cache_rollbacks - before.cache_rollbacks,
            self.seconds - before.seconds,
        )

    def to_dict(self) -> dict:
        return {
            "handovers": self.handovers,
            "rollbacks": self.rollbacks,
            "cache_rollbacks": self.cache_rollbacks,
            "rollback_share": round(self.rollbacks / self.handovers, 4) if self.handovers else 0,
            "seconds": round(self.seconds, 4),
        }


class LoopContext:
    """What every answer's rule shares: the pair, its sequences, and helpers per role."""

    def __init__(
        self, pair: LoadedPair, views: dict[str, Sequences], read_ahead: Callable[[], bool]
    ):
        self.pair = pair
        # whether to read a model's likely next token while the other decodes (the loop's
        # answer, from how its two models are scheduled)
        self.read_ahead = read_ahead
        self.drafts = DraftPlanner()
        self.word_level = pair.word_level
        self.models = {BASE: pair.base_model, ALIGNED: pair.aligned_model}
        self.roles = pair.roles
        self.views = views
        # answer bytes each role has read, per sequence
        self.synced: dict[str, dict[int, int]] = {BASE: {}, ALIGNED: {}}
        self.handover = HandoverStats()
        self._tokenize = {
            role: space_prefix_tokenizer(
                lambda text, m=model: m.tokenize(text.decode("utf-8"), special=False),
                model.adds_space_prefix,
            )
            for role, model in self.models.items()
        }

    # --- reading the sequences ---------------------------------------------------------

    def prompt_end(self, role: str, seq: int) -> int:
        """Where the answer begins in `role`'s sequence: its prompt's length."""
        return self.views[role].prompt_length(seq)

    def answer_tokens(self, role: str, seq: int) -> list[int]:
        return self.views[role].tokens(seq)[self.prompt_end(role, seq) :]

    def answer_length(self, role: str, seq: int) -> int:
        """How many tokens of the answer `role` holds (in its own vocabulary)."""
        return self.views[role].length(seq) - self.prompt_end(role, seq)

    def recent(self, role: str, answer: AnswerState, end: int | None = None) -> list[int]:
        """The tokens the repetition penalty looks back at, in `role`'s vocabulary: the
        answer's last repeat_last_n (before sequence position `end`, when given)."""
        s, seq = answer.settings, answer.seq
        if s.repeat_penalty == 1 or s.repeat_last_n == 0:
            return []
        view = self.views[role]
        if end is not None:
            start = max(self.prompt_end(role, seq), end - s.repeat_last_n)
            return view.tokens(seq)[start:end]
        n = min(s.repeat_last_n, self.answer_length(role, seq))
        return view.tail(seq, n) if n else []

    def piece(self, role: str, token: int) -> bytes:
        return self.models[role].piece(token)

    def ends(self, role: str, token: int, answer: AnswerState) -> bool:
        """An end-of-turn token of that model for this answer (its prompt format's
        markers; any control token, on word-level pairs: none of them can pass to the
        other model as text)."""
        if answer.ignore_end:
            return False
        model = self.models[role]
        return (
            token in answer.end_ids.get(role, ())
            or model.is_eog(token)
            or (self.word_level and model.is_control(token))
        )

    def full(self, role: str, extra: int) -> bool:
        """True when `extra` more tokens would not fit that model's context."""
        view = self.views[role]
        return view.cells_used() + extra > view.stream.n_ctx

    # --- changing them -----------------------------------------------------------------

    def push(self, role: str, seq: int, token: int) -> None:
        """`role` reads `token` (at its next decode)."""
        self.views[role].push(seq, [token])

    def keep_only(self, seq: int, length: int) -> None:
        """Both models forget every token of the answer after its first `length`."""
        for role, view in self.views.items():
            if self.answer_length(role, seq) > length:
                view.truncate(seq, self.prompt_end(role, seq) + length)

    def has_read_all(self, role: str, seq: int, answer: AnswerState) -> None:
        """`role` holds the whole answer so far (it wrote the last of it)."""
        self.synced[role][seq] = len(answer.text_bytes)

    def hand_over(self, role: str, seq: int, answer: AnswerState) -> bool:
        """`role` reads the text the other model wrote since it last read; False when
        that does not fit its context."""
        new = bytes(answer.text_bytes[self.synced[role][seq] :])
        if not new or not complete_utf8(answer.text_bytes):
            return True
        if self.read_text(role, seq, new) is None:
            return False
        self.synced[role][seq] = len(answer.text_bytes)
        return True

    def read_text(self, role: str, seq: int, new: bytes, append_only: bool = False) -> int | None:
        """`role` reads `new` (whole characters) after the text it holds, re-tokenizing its
        last word with it. Returns how many of its answer tokens the join replaced (0: it
        only appended), or None when the text does not fit its context (or, append_only,
        when the join would replace tokens it holds: nothing changes then)."""
        started = time.perf_counter()
        view, start = self.views[role], self.prompt_end(role, seq)
        held = self.answer_tokens(role, seq)
        join = join_text(
            held, self.models[role].piece, self.roles[role].starts_word, new, self._tokenize[role]
        )
        if self.full(role, start + join.keep + len(join.push) - view.length(seq)):
            return None
        dropped = join.rolls_back(len(held))
        if append_only and dropped:
            return None
        evaluated_before = view.length(seq) - view.pending_count(seq)
        self.handover.handovers += 1
        self.handover.rollbacks += dropped > 0
        self.handover.cache_rollbacks += start + join.keep < evaluated_before
        view.truncate(seq, start + join.keep)
        view.push(seq, join.push)
        self.handover.seconds += time.perf_counter() - started
        return dropped


def starts_whole_word(ctx: LoopContext, role: str, token: int, answer: AnswerState) -> bool:
    """True when `token` begins a new word and the text so far ends a whole character."""
    return ctx.roles[role].starts_word(token) and complete_utf8(answer.text_bytes)

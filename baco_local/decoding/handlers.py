"""How the batched loop answers each kind of request, all waiting answers of a kind at
once: one handler per kind, over (k, n_vocab) rows of logits in numpy.

    Measure  -> (top-1 id, top-1 probability, entropy) of the base model's row
    Draw     -> a token drawn from a model's row (the ensemble: (token, credited model))
    Propose  -> a model's processed distribution, to draft from
    Score    -> the base model's rows over a drafted run (a ScoredRun)

Answers whose settings sample alike share a Sampler (its buffers are reused); nothing
here decodes: the loop has made the rows ready before it calls a handler.
"""

from __future__ import annotations

import numpy as np

from ..core.routers import ALIGNED, BASE, MIX
from ..core.sampling import Mixture, Sampler, penalise
from ..core.settings import GenerationSettings
from ..core.uncertainty import RowsMeter
from .loop_context import LoopContext
from .requests import Draw, Measure, Propose, Score, ScoredRun


class Handlers:
    """The handlers of one loop. `waiting` maps a sequence to its answer's request and
    `answers` a sequence to its AnswerState (both the loop's, read live)."""

    def __init__(self, ctx: LoopContext, waiting: dict, answers: dict):
        self.ctx = ctx
        self.pair = ctx.pair
        self._waiting = waiting
        self._answers = answers
        self._samplers: dict[tuple, Sampler] = {}  # (role, sampling settings) -> Sampler
        self._mixtures: dict[tuple, tuple[Mixture, Sampler]] = {}
        base_vocab = self.pair.base_model.n_vocab if self.pair.word_level else self.pair.n_vocab
        self._meter = RowsMeter(base_vocab)
        self.table = {
            Measure: self.measure,
            Draw: self.draw,
            Propose: self.propose,
            Score: self.score,
        }

    def measure(self, seqs: list[int]) -> dict[int, tuple[int, float, float]]:
        top_ids, top1, entropy = self._meter.measure(self._rows(BASE, seqs))
        return {
            seq: (int(top_ids[i]), float(top1[i]), float(entropy[i])) for i, seq in enumerate(seqs)
        }

    def draw(self, seqs: list[int]) -> dict[int, object]:
        """One token per answer, rows of one model and one sampler at a time."""
        replies = {}
        for (source, sampler), group in self._by_sampler(seqs).items():
            if source == MIX:
                replies.update(self._draw_mixture(group))
                continue
            requests = [self._waiting[seq] for seq in group]
            us = [r.u for r in requests]
            recents = [r.recent for r in requests]
            rows = self._rows(source, group)
            tokens = sampler.draw_rows(rows, us, recents, self._banned(source, group))
            replies.update(zip(group, tokens, strict=True))
        return replies

    def propose(self, seqs: list[int]) -> dict[int, object]:
        """Each answer's processed distribution (a Dist) from its model's row."""
        replies = {}
        for (source, sampler), group in self._by_sampler(seqs).items():
            rows = self._rows(source, group)
            banned = self._banned(source, group) or [()] * len(group)
            for i, seq in enumerate(group):
                recent = self._waiting[seq].recent
                replies[seq] = sampler.distribution(rows[i], recent, banned[i])
        return replies

    def score(self, seqs: list[int]) -> dict[int, ScoredRun]:
        """Each answer's base rows over its run, measured all at once."""
        view = self.ctx.views[BASE]
        runs = {seq: self._cut(view.run_rows(seq, self._waiting[seq].rows)) for seq in seqs}
        stacked = list(runs.values())
        top_ids, top1, entropy = self._meter.measure(
            stacked[0] if len(stacked) == 1 else np.concatenate(stacked, axis=0)
        )
        replies, start = {}, 0
        for seq, rows in runs.items():
            end = start + len(rows)
            sampler = self.sampler(BASE, self._answers[seq].settings)
            replies[seq] = ScoredRun(
                rows, top_ids[start:end], top1[start:end], entropy[start:end], sampler.distribution
            )
            start = end
        return replies

    def sampler(self, role: str, settings: GenerationSettings) -> Sampler:
        """The sampler for these settings over `role`'s vocabulary (one per distinct
        sampling setting, buffers reused)."""
        key = (role, _sampling_key(settings))
        if key not in self._samplers:
            model = self.ctx.models[role]
            n_vocab = model.n_vocab if self.pair.word_level else self.pair.n_vocab
            self._samplers[key] = Sampler(n_vocab, settings)
        return self._samplers[key]

    def _by_sampler(self, seqs: list[int]) -> dict[tuple[str, object], list[int]]:
        """The answers grouped by the model they read and the sampler of their settings."""
        groups: dict[tuple[str, object], list[int]] = {}
        for seq in seqs:
            source = self._waiting[seq].source
            settings = self._answers[seq].settings
            sampler = None if source == MIX else self.sampler(source, settings)
            groups.setdefault((source, sampler), []).append(seq)
        return groups

    def _draw_mixture(self, seqs: list[int]) -> dict[int, object]:
        """The ensemble baseline: each model's rows, penalised, mixed, then drawn from."""
        replies = {}
        groups: dict[tuple, list[int]] = {}
        for seq in seqs:
            s = self._answers[seq].settings
            groups.setdefault((s.gamma, s.temperature, s.repeat_penalty), []).append(seq)
        for (gamma, temperature, penalty), group in groups.items():
            mixture, sampler = self._mixture_for(gamma, temperature)
            requests = [self._waiting[seq] for seq in group]
            mixed_in = []
            for role in (BASE, ALIGNED):
                rows = self._rows(role, group).copy()
                for i, request in enumerate(requests):
                    penalise(rows[i], request.recent, penalty, rows[i])
                mixed_in.append(rows)
            log_probs = mixture.log_probs_rows(*mixed_in)
            us = [r.u for r in requests]
            tokens = sampler.draw_rows(log_probs, us, [()] * len(group), self._banned(MIX, group))
            shares = mixture.base_shares(tokens)
            credits = [BASE if share >= 0.5 else ALIGNED for share in shares]
            replies.update(zip(group, zip(tokens, credits, strict=True), strict=True))
        return replies

    def _mixture_for(self, gamma: float, temperature: float) -> tuple[Mixture, Sampler]:
        key = (gamma, temperature)
        if key not in self._mixtures:
            at_one = GenerationSettings(
                router="ensemble",
                gamma=gamma,
                temperature=0 if temperature == 0 else 1,
                repeat_penalty=1.0,
            )
            self._mixtures[key] = (
                Mixture(self.pair.n_vocab, gamma, temperature),
                Sampler(self.pair.n_vocab, at_one),
            )
        return self._mixtures[key]

    def _banned(self, source: str, seqs: list[int]) -> list[set[int]] | None:
        """What the in-context partner may not draw (its preamble's spans), per answer."""
        guard = self.pair.copy_guards.get(ALIGNED)
        if guard is None or source == BASE:
            return None
        span = guard.span - 1
        views, ctx = self.ctx.views, self.ctx
        return [
            guard.banned(views[ALIGNED].tail(seq, min(span, ctx.answer_length(ALIGNED, seq))))
            for seq in seqs
        ]

    def _rows(self, role: str, seqs: list[int]):
        """The logits rows of these answers, cut to the pair's shared vocabulary (a same
        vocabulary pair may differ in padding tokens at the end)."""
        return self._cut(self.ctx.views[role].rows(seqs))

    def _cut(self, rows):
        return rows if self.pair.word_level else rows[:, : self.pair.n_vocab]


def _sampling_key(settings: GenerationSettings) -> tuple:
    """The settings a Sampler reads: answers that agree on them share one."""
    s = settings
    return (s.temperature, s.top_k, s.min_p, s.top_p, s.repeat_penalty)

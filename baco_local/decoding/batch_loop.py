"""The batched loop: k answers to one prompt, one batch per model per step.

Each answer is a slot: its rule, settings, router, sequence and random streams
(`AnswerState`), and the samplers its settings call for. A rule is written once for
one answer: `token_rule` for pairs that share a vocabulary, `speculative_rule` for the
same pairs when the aligned model drafts runs that the base reads at once, and
`word_rule` for pairs that do not share one. A rule is a generator that asks for what
it needs and gets the answer back:

    Measure()            -> (top-1 id, top-1 probability, entropy) of the base model
    Draw(source, u, recent) -> a token drawn from that model's logits (MIX: (token, credit))
    Propose(source, recent) -> that model's processed next-token distribution (a Dist)
    Score()              -> the base model's rows after each pending token (a ScoredRun)
    Want(sources)        -> nothing; a hint that these models should be decoded for it at
                            the next decode, because it will soon ask for them

The loop serves every request it can with the logits at hand, all answers' requests
of one kind at once, through one handler per kind (one (k, n_vocab) array per model:
measuring and sampling work on rows in numpy). When every answer waits for logits, it
decodes: one batch per model holding each waiting answer's pending tokens, with logits
for their last tokens (for every token of a run to score), and the two models side by
side or one after the other (the scheduler's planner picks). An answer that ends
leaves the batch and frees its cells.

Read `BatchLoop._run` top to bottom: it is the whole loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np

from ..backend import Sequences
from ..core.events import Result, TokenEvent
from ..core.routers import ALIGNED, BASE, MIX
from ..core.sampling import Mixture, Sampler, penalise
from ..core.settings import GenerationSettings
from ..core.uncertainty import RowsMeter
from ..errors import Cancelled, PromptError
from ..pairs.loading import LoadedPair
from ..pairs.prompt_formats import Message
from .answer import AnswerState
from .draft_costs import draft_costs
from .draft_plan import DraftPlanner
from .loop_context import LoopContext
from .prompts import prepare_prompts, text_stream_for
from .requests import Draw, Measure, Propose, Score, ScoredRun, Want
from .rule_choice import may_speculate, rule_for
from .scheduler import Scheduler


class BatchLoop:
    """k answers to one prompt, generated together. Iterate for TokenEvents (each with
    its `answer` index); then read `.results`. `cancel()` (any thread) stops them all,
    keeping what each produced."""

    def __init__(
        self,
        pair: LoadedPair,
        messages: tuple[Message, ...],
        settings: list[GenerationSettings],
        *,
        raw: bool = False,
        scheduler: Scheduler,
        ignore_end: bool = False,
        first_index: int = 0,
    ):
        for s in settings:
            pair.check_settings(s)
        self.pair = pair
        self.scheduler = scheduler
        self.settings = settings[0]
        self.context = LoopContext(pair, ignore_end, raw=raw)
        max_tokens = max(s.max_tokens for s in settings)
        self._prompts, self._fit_note = prepare_prompts(pair, messages, raw, max_tokens)
        settings = settings[: self._group_size(len(settings), max_tokens)]
        self.answers = [
            AnswerState(first_index + seq, seq, s, text_stream_for(pair, s, raw, ignore_end))
            for seq, s in enumerate(settings)
        ]
        self._cancel = threading.Event()
        self.results: list[Result] | None = None
        self._samplers: dict[tuple, Sampler] = {}  # (role, sampling settings) -> Sampler
        self._mixtures: dict[tuple, tuple[Mixture, Sampler]] = {}
        base_vocab = pair.base_model.n_vocab if pair.word_level else pair.n_vocab
        self._meter = RowsMeter(base_vocab)
        # What each kind of request needs from the loop: one handler per kind, each
        # answering every waiting answer's request of its kind at once.
        self._handlers = {
            Measure: self._measure,
            Draw: self._draw,
            Propose: self._propose,
            Score: self._score,
        }

    def _group_size(self, n: int, max_tokens: int) -> int:
        """How many answers to decode together: at most n_parallel, and as many as the
        context holds with the prompt once and each answer at full length (on a word
        level pair the base may need more tokens than the aligned count: 1.5x)."""
        k = min(n, self.pair.load_settings.n_parallel)
        for role, prompt in self._prompts.items():
            per_answer = max_tokens * (3 if self.pair.word_level and role == BASE else 2) // 2
            room = self.pair.streams[role].n_ctx - len(prompt.tokens)
            k = min(k, max(1, room // max(per_answer, 1)))
        return k

    @property
    def result(self) -> Result | None:
        """The first answer's result (for a single answer)."""
        return self.results[0] if self.results else None

    def cancel(self) -> None:
        self._cancel.set()

    def run(self) -> list[Result]:
        for _ in self:
            pass
        return self.results

    def __iter__(self) -> Iterator[TokenEvent]:
        if self.results is not None:
            for result in self.results:
                yield from result.tokens
            return
        yield from self._run()

    # --- the loop ----------------------------------------------------------------------

    def _run(self) -> Iterator[TokenEvent]:
        started = self._started = time.perf_counter()
        ctx, k = self.context, len(self.answers)
        self._waiting: dict[int, object] = {}
        self._wants: dict[int, tuple[str, ...]] = {}
        self._results: dict[int, Result] = {}
        self._ending: list[int] = []  # ended; some of their events may not be out yet
        self._finished: list[int] = []  # ended, every event yielded
        self._rules = {}
        try:
            # Each answer's rule: speculative where its settings ask for it and it pays
            # (what runs cost here is measured once per pair and host, then kept).
            costs = None
            if any(may_speculate(self.pair, a.settings) for a in self.answers):
                costs = draft_costs(self.pair, self.scheduler.n_threads)
                ctx.drafts = DraftPlanner(costs)
            rules = {a.seq: rule_for(self.pair, a.settings, costs) for a in self.answers}
            # Each model reads the prompt once, in its own format, for all k answers.
            for role in (BASE, ALIGNED):
                self._start(role, k)
            # Every answer starts its rule and runs until it asks for something.
            for answer in self.answers:
                self._rules[answer.seq] = rules[answer.seq](ctx, answer)
                self._advance(answer, first=True)
            while self._waiting and not self._cancel.is_set():
                # Serve what the logits at hand can answer, all answers at once.
                self._serve()
                yield from self._take_ready()
                # Everyone left waits for logits: one batch per model.
                if self._waiting:
                    self._decode()
        except Cancelled:
            pass  # stopped while the prompt was being read
        except PromptError:  # the shared context filled up (rules check before pushing)
            for seq in list(self._waiting):
                self.answers[seq].end("context")
        finally:
            self._close(started)
        yield from self._take_ready()

    def _start(self, role: str, k: int) -> None:
        stream = self.pair.streams[role]
        load = self.pair.load_settings
        # On one vocabulary every token is read as soon as it is written, as far as the
        # rows go (one token per decode): a seeded answer does not depend on when a model
        # caught up. Words handed over between two vocabularies are read in one batch.
        view = Sequences(
            stream,
            k,
            room=load.n_parallel,
            exact_runs=load.exact_scoring,
            one_token_per_decode=not self.pair.word_level,
        )
        prompt = self._prompts[role]
        self.scheduler.run_alone(
            lambda threads: (
                stream.set_threads(threads),
                view.start(
                    prompt.tokens,
                    fixed=prompt.fixed,
                    store=self.pair.prefix_store(role),
                    stop=self._cancel,
                ),
            )
        )
        self.context.views[role] = view
        self.context.prompt_length[role] = len(prompt.tokens)
        self.context.synced[role] = [0] * k

    def _serve(self, kinds: tuple[type, ...] | None = None, once: bool = False) -> None:
        """Answer every request (of these kinds) that the current logits can answer,
        each kind through its handler; repeat until none can (or once)."""
        kinds = kinds or tuple(self._handlers)
        while True:
            ready = [
                seq
                for seq, request in self._waiting.items()
                if isinstance(request, kinds) and self._servable(seq, request)
            ]
            if not ready:
                return
            replies = {}
            for kind in kinds:
                group = [seq for seq in ready if isinstance(self._waiting[seq], kind)]
                if group:
                    replies.update(self._handlers[kind](group))
            for seq, reply in replies.items():
                self._advance(self.answers[seq], reply)
            if once:
                return

    def _servable(self, seq: int, request) -> bool:
        views = self.context.views
        if request.every_row:
            return all(views[role].scored(seq) for role in request.sources)
        return all(views[role].ready(seq) for role in request.sources)

    def _measure(self, seqs: list[int]) -> dict[int, tuple[int, float, float]]:
        top_ids, top1, entropy = self._meter.measure(self._rows(BASE, seqs))
        return {
            seq: (int(top_ids[i]), float(top1[i]), float(entropy[i])) for i, seq in enumerate(seqs)
        }

    def _draw(self, seqs: list[int]) -> dict[int, object]:
        """Draw: one token per answer, rows of one model and one sampler at a time."""
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

    def _propose(self, seqs: list[int]) -> dict[int, object]:
        """Propose: each answer's processed distribution (a Dist) from its model's row."""
        replies = {}
        for (source, sampler), group in self._by_sampler(seqs).items():
            rows = self._rows(source, group)
            banned = self._banned(source, group) or [()] * len(group)
            for i, seq in enumerate(group):
                recent = self._waiting[seq].recent
                replies[seq] = sampler.distribution(rows[i], recent, banned[i])
        return replies

    def _score(self, seqs: list[int]) -> dict[int, ScoredRun]:
        """Score: each answer's base rows over its run, measured all at once."""
        view = self.context.views[BASE]
        runs = {seq: self._cut(view.run_rows(seq, self._waiting[seq].rows)) for seq in seqs}
        top_ids, top1, entropy = self._meter.measure(
            next(iter(runs.values())) if len(runs) == 1 else _stack(list(runs.values()))
        )
        replies, start = {}, 0
        for seq, rows in runs.items():
            end = start + len(rows)
            sampler = self._sampler(BASE, self.answers[seq].settings)
            replies[seq] = ScoredRun(
                rows, top_ids[start:end], top1[start:end], entropy[start:end], sampler.distribution
            )
            start = end
        return replies

    def _by_sampler(self, seqs: list[int]) -> dict[tuple[str, object], list[int]]:
        """The answers grouped by the model they read and the sampler of their settings."""
        groups: dict[tuple[str, object], list[int]] = {}
        for seq in seqs:
            source = self._waiting[seq].source
            settings = self.answers[seq].settings
            sampler = None if source == MIX else self._sampler(source, settings)
            groups.setdefault((source, sampler), []).append(seq)
        return groups

    def _sampler(self, role: str, settings: GenerationSettings) -> Sampler:
        """The sampler for these settings over `role`'s vocabulary (one per distinct
        sampling setting, buffers reused)."""
        key = (role, _sampling_key(settings))
        if key not in self._samplers:
            model = self.context.models[role]
            n_vocab = model.n_vocab if self.pair.word_level else self.pair.n_vocab
            self._samplers[key] = Sampler(n_vocab, settings)
        return self._samplers[key]

    def _draw_mixture(self, seqs: list[int]) -> dict[int, object]:
        """The ensemble baseline: each model's rows, penalised, mixed, then drawn from."""
        replies = {}
        groups: dict[tuple, list[int]] = {}
        for seq in seqs:
            s = self.answers[seq].settings
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
        views, ctx = self.context.views, self.context
        return [
            guard.banned(views[ALIGNED].tail(seq, min(span, ctx.answer_length(ALIGNED, seq))))
            for seq in seqs
        ]

    def _rows(self, role: str, seqs: list[int]):
        """The logits rows of these answers, cut to the pair's shared vocabulary (a same
        vocabulary pair may differ in padding tokens at the end)."""
        return self._cut(self.context.views[role].rows(seqs))

    def _cut(self, rows):
        return rows if self.pair.word_level else rows[:, : self.pair.n_vocab]

    def _decode(self) -> None:
        """One batch per model, with every waiting answer's pending tokens (every token
        of a run to score, as many runs as one decode's output rows hold)."""
        views = self.context.views
        needed: dict[str, set[int]] = {BASE: set(), ALIGNED: set()}
        every: dict[str, dict[int, int]] = {BASE: {}, ALIGNED: {}}
        for seq, request in self._waiting.items():
            if request.every_row:
                for role in request.sources:
                    if not views[role].scored(seq) and self._room_to_score(role, every, seq):
                        needed[role].add(seq)
                        every[role][seq] = request.rows
                continue
            for role in request.sources:
                if not views[role].ready(seq):
                    needed[role].add(seq)
            for role in self._wants.get(seq, ()):
                if views[role].pending_count(seq):
                    needed[role].add(seq)
        self._wants.clear()
        jobs = [
            self._decode_job(role, sorted(seqs), every[role])
            for role, seqs in needed.items()
            if seqs
        ]
        if len(jobs) == 2:
            # On one vocabulary, a rule answered a Measure only asks for a draw next, so
            # the base rows can be measured while the aligned batch still decodes.
            between = None if self.pair.word_level else self._measure_ready
            self.scheduler.run_side_by_side(*jobs, kind="batch", between=between)
        elif jobs:
            self.scheduler.run_alone(jobs[0])

    def _measure_ready(self) -> None:
        self._serve(kinds=(Measure,), once=True)

    def _room_to_score(self, role: str, every: dict[str, dict[int, int]], seq: int) -> bool:
        """True when this answer's run still fits the decode's output rows with the runs
        already taken (the first always does: runs are at most the rows a decode holds)."""
        view = self.context.views[role]
        rows = sum(view.pending_count(s) + 1 for s in every[role])
        return not every[role] or rows + view.pending_count(seq) + 1 <= view.stream.n_outputs

    def _decode_job(self, role: str, seqs: list[int], every: dict[int, int] | None = None):
        stream, view = self.pair.streams[role], self.context.views[role]

        def job(threads: int) -> None:
            stream.set_threads(threads)
            view.decode(seqs, stop=self._cancel, every=every)

        return job

    def _advance(self, answer: AnswerState, reply=None, first: bool = False) -> None:
        """Send the rule its reply; run it to its next request (hints are noted, not
        waited for) or to its end."""
        rule, seq = self._rules[answer.seq], answer.seq
        try:
            request = next(rule) if first else rule.send(reply)
            while isinstance(request, Want):
                self._wants[seq] = request.sources
                request = next(rule)
        except StopIteration as stop:
            self._waiting.pop(seq, None)
            answer.end(stop.value)
            self._drop(answer)
            return
        self._waiting[seq] = request

    def _drop(self, answer: AnswerState) -> None:
        """The answer is over: keep each model's tokens of it, free its cells."""
        for role, view in self.context.views.items():
            answer.histories[role] = self.context.answer_tokens(role, answer.seq)
            view.drop(answer.seq)
        self._results[answer.seq] = self._result(answer)
        self._ending.append(answer.index)

    def take_finished(self) -> list[tuple[int, Result]]:
        """(answer index, result) of the answers that ended since the last call (their
        events have all been yielded)."""
        done = [(i, self._results[i - self.answers[0].index]) for i in self._finished]
        self._finished = []
        return done

    def _result(self, answer: AnswerState) -> Result:
        prompt_tokens = {role: len(p.tokens) for role, p in self._prompts.items()}
        notes = tuple(self.pair.notes) + ((self._fit_note,) if self._fit_note else ())
        return answer.result(self.pair.label, notes, self._started, prompt_tokens)

    def _take_ready(self) -> Iterator[TokenEvent]:
        ending, self._ending = self._ending, []
        for answer in self.answers:
            yield from answer.take_ready()
        self._finished += ending

    def _close(self, started: float) -> None:
        for seq in list(self._waiting):
            self._rules[seq].close()
        self._waiting.clear()
        for answer in self.answers:
            if answer.finish is None:
                answer.end("cancelled")
                if self.context.views:
                    self._drop(answer)
        for view in self.context.views.values():
            view.close()
        self.results = [
            self._results.get(answer.seq) or self._result(answer) for answer in self.answers
        ]


def _sampling_key(settings: GenerationSettings) -> tuple:
    """The settings a Sampler reads: answers that agree on them share one."""
    s = settings
    return (s.temperature, s.top_k, s.min_p, s.top_p, s.repeat_penalty)


def _stack(arrays):
    return np.concatenate(arrays, axis=0)

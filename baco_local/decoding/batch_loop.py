"""The batched loop: k answers to one prompt, one batch per model per step.

Each answer follows a rule, written once for one answer: `token_rule` for pairs that
share a vocabulary, `word_rule` for pairs that do not. A rule is a generator that asks
for what it needs and gets the answer back:

    Measure()            -> (top-1 id, top-1 probability, entropy) of the base model
    Draw(source, u, recent) -> a token drawn from that model's logits (MIX: (token, credit))
    Want(sources)        -> nothing; a hint that these models should be decoded for it at
                            the next decode, because it will soon ask for them

The loop serves every request it can with the logits at hand, all answers' requests
of one kind at once (one (k, n_vocab) array per model: measuring and sampling work on
rows in numpy). When every answer waits for logits, it decodes: one batch per model
holding each waiting answer's pending tokens, with logits only for their last tokens,
and the two models side by side or one after the other (the scheduler's planner picks).
An answer that ends leaves the batch and frees its cells.

Read `BatchLoop._run` top to bottom: it is the whole loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

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
from .loop_context import LoopContext
from .prompts import prepare_prompts, text_stream_for
from .requests import Draw, Measure, Want, sources_of
from .scheduler import Scheduler
from .token_rule import token_rule
from .word_rule import word_rule


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
        pair.check_settings(settings[0])
        self.pair = pair
        self.scheduler = scheduler
        self.settings = settings[0]
        self.context = LoopContext(pair, settings[0], ignore_end)
        self._prompts, self._fit_note = prepare_prompts(pair, messages, raw, settings[0].max_tokens)
        settings = settings[: self._group_size(len(settings), settings[0].max_tokens)]
        self.answers = [
            AnswerState(first_index + seq, seq, s, text_stream_for(pair, s, raw, ignore_end))
            for seq, s in enumerate(settings)
        ]
        self._rule = word_rule if pair.word_level else token_rule
        self._cancel = threading.Event()
        self.results: list[Result] | None = None
        self._samplers = {
            role: Sampler(model.n_vocab if pair.word_level else pair.n_vocab, settings[0])
            for role, model in self.context.models.items()
        }
        base_vocab = pair.base_model.n_vocab if pair.word_level else pair.n_vocab
        self._meter = RowsMeter(base_vocab)
        self._mixture = None
        if self.context.router.name == "ensemble":
            s = settings[0]
            self._mixture = Mixture(pair.n_vocab, s.gamma, s.temperature)
            at_one = s.with_changes(temperature=0 if s.temperature == 0 else 1, repeat_penalty=1.0)
            self._mixture_sampler = Sampler(pair.n_vocab, at_one)

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
            # Each model reads the prompt once, in its own format, for all k answers.
            for role in (BASE, ALIGNED):
                self._start(role, k)
            # Every answer starts its rule and runs until it asks for something.
            for answer in self.answers:
                self._rules[answer.seq] = self._rule(ctx, answer)
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
        view = Sequences(stream, k, room=self.pair.load_settings.n_parallel)
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

    def _serve(self, kinds=(Measure, Draw), once: bool = False) -> None:
        """Answer every request of these kinds that the current logits can answer; repeat
        until none can (or once)."""
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
                if kind is Measure and group:
                    replies.update(self._measure(group))
                elif group:
                    for source in (BASE, ALIGNED, MIX):
                        seqs = [seq for seq in group if self._waiting[seq].source == source]
                        if seqs:
                            replies.update(self._draw(source, seqs))
            for seq, reply in replies.items():
                self._advance(self.answers[seq], reply)
            if once:
                return

    def _servable(self, seq: int, request) -> bool:
        views = self.context.views
        if isinstance(request, Measure):
            return views[BASE].ready(seq)
        if request.source == MIX:
            return views[BASE].ready(seq) and views[ALIGNED].ready(seq)
        return views[request.source].ready(seq)

    def _measure(self, seqs: list[int]) -> dict[int, tuple[int, float, float]]:
        top_ids, top1, entropy = self._meter.measure(self._rows(BASE, seqs))
        return {
            seq: (int(top_ids[i]), float(top1[i]), float(entropy[i])) for i, seq in enumerate(seqs)
        }

    def _draw(self, source: str, seqs: list[int]) -> dict[int, object]:
        requests = [self._waiting[seq] for seq in seqs]
        us = [r.u for r in requests]
        recents = [r.recent for r in requests]
        banned = self._banned(source, seqs)
        if source != MIX:
            tokens = self._samplers[source].draw_rows(self._rows(source, seqs), us, recents, banned)
            return dict(zip(seqs, tokens, strict=True))
        # The ensemble baseline: each model's rows, penalised, mixed, then drawn from.
        penalty = self.settings.repeat_penalty
        mixed_in = []
        for role in (BASE, ALIGNED):
            rows = self._rows(role, seqs).copy()
            for i, recent in enumerate(recents):
                penalise(rows[i], recent, penalty, rows[i])
            mixed_in.append(rows)
        log_probs = self._mixture.log_probs_rows(*mixed_in)
        tokens = self._mixture_sampler.draw_rows(log_probs, us, [()] * len(seqs), banned)
        shares = self._mixture.base_shares(tokens)
        credits = [BASE if share >= 0.5 else ALIGNED for share in shares]
        return dict(zip(seqs, zip(tokens, credits, strict=True), strict=True))

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
        rows = self.context.views[role].rows(seqs)
        return rows if self.pair.word_level else rows[:, : self.pair.n_vocab]

    def _decode(self) -> None:
        """One batch per model, with every waiting answer's pending tokens."""
        views = self.context.views
        needed: dict[str, set[int]] = {BASE: set(), ALIGNED: set()}
        for seq, request in self._waiting.items():
            for role in sources_of(request):
                if not views[role].ready(seq):
                    needed[role].add(seq)
            for role in self._wants.get(seq, ()):
                if views[role].pending_count(seq):
                    needed[role].add(seq)
        self._wants.clear()
        jobs = [self._decode_job(role, sorted(seqs)) for role, seqs in needed.items() if seqs]
        if len(jobs) == 2:
            # On one vocabulary, a rule answered a Measure only asks for a draw next, so
            # the base rows can be measured while the aligned batch still decodes.
            between = None if self.pair.word_level else self._measure_ready
            self.scheduler.run_side_by_side(*jobs, kind="batch", between=between)
        elif jobs:
            self.scheduler.run_alone(jobs[0])

    def _measure_ready(self) -> None:
        self._serve(kinds=(Measure,), once=True)

    def _decode_job(self, role: str, seqs: list[int]):
        stream, view = self.pair.streams[role], self.context.views[role]

        def job(threads: int) -> None:
            stream.set_threads(threads)
            view.decode(seqs, stop=self._cancel)

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

"""The batched loop: every answer on a pair, decoded together; requests join and leave
between steps (continuous batching).

Each answer is a slot: its sequence in each model's context, its rule, settings,
router and random streams (`AnswerState`), and the request it belongs to (`Handle`).
A rule is written once for one answer: `token_rule` for pairs that share a vocabulary,
`speculative_rule` for the same pairs when the aligned model drafts runs that the base
reads at once, `word_rule` and `speculative_word_rule` for pairs that do not share
one. A rule is a generator that asks for what it needs and gets the answer back:

    Measure()            -> (top-1 id, top-1 probability, entropy) of the base model
    Draw(source, u, recent) -> a token drawn from that model's logits (MIX: (token, credit))
    Propose(source, recent) -> that model's processed next-token distribution (a Dist)
    Score(rows)          -> the base model's rows over a drafted run (a ScoredRun)
    Want(sources)        -> nothing; a hint that these models should be decoded for it at
                            the next decode, because it will soon ask for them

One step of the loop (`_step`, read it top to bottom):
1. requests waiting for sequences get them, as many answers as the context has room
   for; each request's prompt is read once (the first of its answers), then shared;
2. prompts being read advance by one chunk each (a decode of their own);
3. answers the last step left waiting for logits get them: each model decodes one
   batch holding every waiting answer's pending tokens, the two models side by side or
   one after the other (the scheduler's planner picks); when both roles run on one
   model they share one context, and a step that needs both is one decode
   (`LoadSettings.one_context`). This comes after the prompts' decode, which overwrites
   every row of the context: the running answers' tokens are pending then, so they
   lose nothing, and they write a token in every step while a long prompt is read;
4. every request the logits at hand can answer is served, all answers' requests of one
   kind at once, through one handler per kind (`handlers`);
5. their events go to their requests, and the answers that ended leave: their cells
   are freed. The step ends here, so a caller sees a token as soon as it is drawn,
   not one decode later.

Who runs the steps: whoever waits for an answer (`Handle` iterates by calling
`drive`) asks for the next step, which runs on the scheduler's own thread (so the
same threads always decode: see scheduler.py); one step at a time, the others wait.
"""

from __future__ import annotations

import threading
from collections import deque

from ..backend import Sequences, decode_thread
from ..backend.sequences import decode_together, read_prompts_together
from ..core.routers import ALIGNED, BASE
from ..errors import PromptError
from ..pairs.loading import LoadedPair
from .answer import AnswerState
from .draft_costs import draft_costs
from .draft_plan import ASSUMED_COSTS, DraftPlanner
from .handle import Handle
from .handlers import Handlers
from .loop_context import LoopContext
from .prompts import prepare_prompts, text_stream_for
from .requests import Measure, Want
from .requests_many import Request
from .rule_choice import may_speculate, rule_for
from .scheduler import Scheduler
from .thread_plan import SIDE_BY_SIDE

ROLES = (BASE, ALIGNED)

READ_AHEAD_SAMPLE = 32  # see BatchLoop._read_ahead


class _Slot:
    """An answer with a sequence: reading its prompt (`reader`: the sequence that reads
    it for the request's answers that start together), or running its rule."""

    def __init__(self, answer: AnswerState, handle: Handle, reader: int):
        self.answer = answer
        self.handle = handle
        self.reader = reader
        self.rule = None


class BatchLoop:
    """The loop of one loaded pair. `submit` a Request, iterate the Handle."""

    def __init__(self, pair: LoadedPair, scheduler: Scheduler):
        self.pair = pair
        self.scheduler = scheduler
        load = pair.load_settings
        # On one vocabulary every token is read as soon as it is written, as far as the
        # rows go (one token per decode): a seeded answer does not depend on when a model
        # caught up. Words handed over between two vocabularies are read in one batch.
        views = {
            role: Sequences(
                pair.streams[role],
                exact_runs=load.exact_scoring,
                one_token_per_decode=not pair.word_level,
            )
            for role in ROLES
        }
        self.context = LoopContext(pair, views, read_ahead=self._read_ahead)
        self._read_ahead_asked = 0
        self._queue: deque[Handle] = deque()  # requests with answers not yet started
        self._slots: dict[int, _Slot] = {}  # by sequence id
        self._waiting: dict[int, object] = {}  # sequence -> its rule's request
        self._wants: dict[int, tuple[str, ...]] = {}
        self._answers: dict[int, AnswerState] = {}
        self._handlers = Handlers(self.context, self._waiting, self._answers)
        self._stepping = threading.Lock()
        self._stepped = threading.Condition()
        self._submit_lock = threading.Lock()
        self._costs = None
        self.closed = False

    def _read_ahead(self) -> bool:
        """Whether a rule should have one model read its likely next token while the
        other decodes (`word_rule`'s candidate). It pays where the two decode side by side,
        and among other answers (a row more in a decode they share); one after the other
        it only costs a decode each time the router switches models (one answer of the
        default pair, 2-core Intel host: 6.5% more characters/s without it). One ask in
        READ_AHEAD_SAMPLE reads ahead all the same, so the planner goes on timing both
        plans and can change its mind."""
        if self.context.drafts.batch > 1 or self.scheduler.planner.best("batch") == SIDE_BY_SIDE:
            return True
        self._read_ahead_asked += 1
        return self._read_ahead_asked % READ_AHEAD_SAMPLE == 0

    # --- requests ------------------------------------------------------------------------

    def submit(self, request: Request) -> Handle:
        """Queue a request; its prompts are prepared now, so a prompt that cannot fit is
        an error here, before anything is decoded."""
        if self.closed:
            raise RuntimeError("the loop is closed")
        prompts, note = self.prepare(request)
        handle = Handle(self, request, prompts, note)
        with self._submit_lock:
            self._queue.append(handle)
        return handle

    def prepare(self, request: Request):
        """(prompts by role, fit note) of the request: raises the BacoError of settings
        the pair cannot honour or of a prompt that cannot fit."""
        settings = [request.answer_settings(i) for i in range(request.first_answer, request.n)]
        for s in settings:
            self.pair.check_settings(s)
        max_tokens = max(s.max_tokens for s in settings)
        return prepare_prompts(self.pair, request.messages, request.raw, max_tokens)

    @property
    def running(self) -> int:
        """Answers with a sequence now."""
        return len(self._slots)

    @property
    def waiting(self) -> int:
        """Answers of queued requests still waiting for a sequence."""
        with self._submit_lock:
            return sum(h.waiting for h in self._queue if not h.cancelled.is_set())

    def drive(self) -> None:
        """Run one step, or, while another thread runs one, wait for it."""
        if not self._stepping.acquire(blocking=False):
            with self._stepped:
                self._stepped.wait(timeout=0.05)
            return
        try:
            # On the decode thread; Ctrl-C is raised once the step has ended.
            decode_thread.run(self._step)
        except BaseException:
            self._abort()
            raise
        finally:
            self._stepping.release()
            with self._stepped:
                self._stepped.notify_all()

    # --- one step ------------------------------------------------------------------------

    def _step(self) -> None:
        # Cancelled answers leave.
        self._leave_cancelled()
        # Requests that wait take free sequences.
        self._admit()
        # Prompts being read advance by a chunk. Before the running answers' decode: a
        # decode of prompts overwrites every row, and the running answers, whose tokens
        # are pending, have none yet to lose.
        self._read_prompts()
        # Everyone the last step left waiting for logits: one batch per model.
        if self._waiting:
            try:
                self._decode()
            except PromptError:  # the shared context filled up (rules check before pushing)
                for seq in list(self._waiting):
                    self._end(seq, "context")
            self._deliver()
        # Serve what the logits at hand can answer, all answers at once.
        self.context.drafts.batch = len(self._slots)
        self._serve()
        # Events go to their requests, which see them now (the decode they wait for is
        # the next step's); answers that ended leave.
        self._deliver()

    def _admit(self) -> None:
        """Give waiting requests sequences, first come first served, as many answers as the
        context holds with each at full length."""
        while True:
            with self._submit_lock:
                handle = self._queue[0] if self._queue else None
            if handle is None:
                return
            views = self.context.views
            if not all(views[r].home_holds(p.tokens, p.fixed) for r, p in handle.prompts.items()):
                # Sequence 0, whose prompt the others copy their common prefix from (an
                # in-context preamble of hundreds of tokens), is still reading that
                # preamble: the next request starts once it has, instead of reading it
                # again. Once it holds the preamble (a warm cache holds it from the start)
                # newcomers join at once and copy what it has read.
                return
            free = [i for i in self.context.views[BASE].free() if i not in self._slots]
            count = min(handle.waiting, len(free), self._room_for(handle))
            if count == 0:
                if self._slots:
                    return  # wait for answers to leave
                count = 1  # alone in the loop: it must go, whatever room it finds
            self._prepare_costs(handle)
            self._open(handle, free[:count])
            if handle.waiting == 0:
                with self._submit_lock:
                    self._queue.popleft()
            else:
                return  # the rest of this request waits its turn; so do those behind it

    def _room_for(self, handle: Handle) -> int:
        """How many of the request's answers the contexts hold now: its prompt once and
        each answer at full length, besides what the running answers may still write."""
        count = handle.waiting
        for role, prompt in handle.prompts.items():
            view = self.context.views[role]
            per_answer = self._cells_per_answer(role, handle.settings.max_tokens)
            room = view.stream.n_ctx - view.cells_used() - len(prompt.tokens)
            room -= self._still_to_write(role)
            count = min(count, max(0, room // max(per_answer, 1)))
        return count

    def _cells_per_answer(self, role: str, max_tokens: int) -> int:
        """KV cells an answer of max_tokens may take in that model (a word-level pair's
        base may need 1.5x the aligned model's tokens)."""
        return max_tokens * (3 if self.pair.word_level and role == BASE else 2) // 2

    def _still_to_write(self, role: str) -> int:
        """Cells the running answers may still take in that model, at their max_tokens
        (an answer still reading its prompt counts the prompt's unread part too)."""
        total = 0
        for seq, slot in self._slots.items():
            per_answer = self._cells_per_answer(role, slot.answer.settings.max_tokens)
            total += max(0, per_answer - self.context.answer_length(role, seq))
        return total

    def _prepare_costs(self, handle: Handle) -> None:
        """What speculation costs here, measured the first time an answer may speculate
        (only while the loop is idle: the measurement decodes after sequence 0)."""
        settings = handle.settings
        if self._costs is not None or not may_speculate(self.pair, settings):
            return
        if self.pair.word_level and settings.speculative != "on":
            return  # "auto" does not speculate across vocabularies (rule_choice)
        if self._slots:
            return
        self._costs = draft_costs(self.pair, self.scheduler.n_threads)
        self.context.drafts = DraftPlanner(self._costs)

    def _open(self, handle: Handle, seqs: list[int]) -> None:
        """Start `len(seqs)` answers of the request: the first reads its prompt (or all
        share one already read by another of its answers)."""
        pair, request = self.pair, handle.request
        donor = next(
            (s for s, slot in self._slots.items() if slot.handle is handle and slot.rule), None
        )
        reader = seqs[0] if donor is None else donor
        end_ids = None if request.raw else pair.end_token_ids_by_role()
        for seq, index in zip(seqs, handle.start_answers(len(seqs)), strict=True):
            settings = request.answer_settings(index)
            text = text_stream_for(pair, settings, request.raw, request.ignore_end)
            answer = AnswerState(index, seq, settings, text, end_ids, request.ignore_end)
            self._slots[seq] = _Slot(answer, handle, reader)
            self._answers[seq] = answer
        if donor is None:
            for role in ROLES:
                prompt = handle.prompts[role]
                self.context.views[role].open(
                    reader, prompt.tokens, fixed=prompt.fixed, store=pair.prefix_store(role)
                )
        else:
            self._start_rules(list(seqs), donor)

    def _read_prompts(self) -> None:
        """One chunk of each prompt being read, in each model, all prompts of a model in
        one decode (two when some read their last token); a prompt read in both models
        starts its answers."""
        views = self.context.views
        readers = sorted(
            {
                slot.reader
                for slot in self._slots.values()
                if slot.rule is None and not slot.handle.cancelled.is_set()
            }
        )  # a cancelled request's answers end at the next step (_leave_cancelled)
        if not readers:
            return
        by_context: dict[int, list] = {}
        for role in ROLES:
            by_context.setdefault(id(views[role].context), []).append((views[role], readers))
        for jobs in by_context.values():
            self.scheduler.run_alone(self._prompts_job(jobs))
        for reader in readers:
            if not any(views[role].reading(reader) for role in ROLES):
                group = [s for s, sl in self._slots.items() if sl.reader == reader and not sl.rule]
                self._start_rules(group, reader)

    def _prompts_job(self, jobs):
        def job(threads: int) -> None:
            jobs[0][0].stream.set_threads(threads)
            read_prompts_together(jobs)

        return job

    def _start_rules(self, seqs: list[int], source: int) -> None:
        """These answers begin: each shares `source`'s prompt (unless it is `source`), and
        its rule runs until it asks for something."""
        for seq in seqs:
            slot = self._slots[seq]
            if seq != source:
                for role in ROLES:
                    self.context.views[role].share(source, seq)
            for role in ROLES:
                self.context.synced[role][seq] = 0
            settings = slot.answer.settings
            costs = self._costs or (ASSUMED_COSTS if settings.speculative == "on" else None)
            slot.reader = seq
            slot.rule = rule_for(self.pair, settings, costs)(self.context, slot.answer)
            self._advance(seq, first=True)

    # --- serving and decoding ------------------------------------------------------------

    def _serve(self, kinds: tuple[type, ...] | None = None, once: bool = False) -> None:
        """Answer every request (of these kinds) that the current logits can answer,
        each kind through its handler; repeat until none can (or once)."""
        table = self._handlers.table
        kinds = kinds or tuple(table)
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
                    replies.update(table[kind](group))
            for seq, reply in replies.items():
                self._advance(seq, reply)
            if once:
                return

    def _servable(self, seq: int, request) -> bool:
        views = self.context.views
        if request.every_row:
            return all(views[role].scored(seq) for role in request.sources)
        return all(views[role].ready(seq) for role in request.sources)

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
        if self.pair.one_context:
            # Both roles on one model, in one context: one decode for the two. Both views
            # take part even when one has nothing to read, since a decode overwrites
            # every row of the context: the other role's rows go stale with it.
            if any(needed.values()):
                self.scheduler.run_alone(self._decode_both_job(needed, every))
            return
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

    def _decode_job(self, role: str, seqs: list[int], every: dict[int, int]):
        stream, view = self.pair.streams[role], self.context.views[role]

        def job(threads: int) -> None:
            stream.set_threads(threads)
            view.decode(seqs, every=every)

        return job

    def _decode_both_job(self, needed: dict[str, set[int]], every: dict[str, dict[int, int]]):
        views = self.context.views
        jobs = [(views[role], sorted(needed[role]), every[role]) for role in ROLES]

        def job(threads: int) -> None:
            views[BASE].stream.set_threads(threads)
            decode_together(jobs)

        return job

    # --- answers ending ------------------------------------------------------------------

    def _advance(self, seq: int, reply=None, first: bool = False) -> None:
        """Send the rule its reply; run it to its next request (hints are noted, not
        waited for) or to its end."""
        slot = self._slots[seq]
        try:
            request = next(slot.rule) if first else slot.rule.send(reply)
            while isinstance(request, Want):
                self._wants[seq] = request.sources
                request = next(slot.rule)
        except StopIteration as stop:
            self._waiting.pop(seq, None)
            self._wants.pop(seq, None)
            slot.answer.end(stop.value)
            return
        self._waiting[seq] = request

    def _end(self, seq: int, finish: str) -> None:
        """End an answer from outside its rule (cancelled, context full)."""
        slot = self._slots[seq]
        self._waiting.pop(seq, None)
        self._wants.pop(seq, None)
        if slot.rule is not None:
            slot.rule.close()
        slot.answer.end(finish)

    def _deliver(self) -> None:
        """Every answer's released events to its request; answers that ended leave."""
        for seq, slot in list(self._slots.items()):
            slot.handle.deliver(slot.answer.take_ready())
            if slot.answer.finish is not None:
                self._retire(seq)

    def _retire(self, seq: int) -> None:
        """The answer is over: keep each model's tokens of it, free its sequence."""
        slot = self._slots.pop(seq)
        self._answers.pop(seq, None)
        histories = {}
        for role, view in self.context.views.items():
            if view.live_sequence(seq):
                histories[role] = self.context.answer_tokens(role, seq)
                view.close(seq)
        handle, answer = slot.handle, slot.answer
        result = answer.result(
            self.pair.label, self._notes(handle), handle.submitted, self._prompt_tokens(handle)
        )
        handle.answer_ended(answer.index, result, histories)

    def _notes(self, handle: Handle) -> tuple[str, ...]:
        return tuple(self.pair.notes) + ((handle.fit_note,) if handle.fit_note else ())

    @staticmethod
    def _prompt_tokens(handle: Handle) -> dict[str, int]:
        return {role: len(p.tokens) for role, p in handle.prompts.items()}

    def _leave_cancelled(self) -> None:
        for seq, slot in list(self._slots.items()):
            if slot.handle.cancelled.is_set() and slot.answer.finish is None:
                self._end(seq, "cancelled")
        self._deliver()
        with self._submit_lock:
            for handle in [h for h in self._queue if h.cancelled.is_set()]:
                self._queue.remove(handle)
                handle.skip_waiting()

    def _abort(self) -> None:
        """Something went wrong mid-step (Ctrl-C, an error): every answer ends with what
        it wrote, every waiting request is dropped, and the contexts are left clean."""
        for seq, slot in list(self._slots.items()):
            if slot.answer.finish is None:
                self._end(seq, "cancelled")
        self._deliver()
        with self._submit_lock:
            queued, self._queue = list(self._queue), deque()
        for handle in queued:
            handle.cancel()
            handle.skip_waiting()

    def close(self) -> None:
        """Stop every answer (each keeps what it wrote) and free the sequences."""
        for slot in list(self._slots.values()):
            slot.handle.cancel()
        with self._submit_lock:
            for handle in self._queue:
                handle.cancel()
        with self._stepping:
            self._leave_cancelled()
            self.closed = True
            for view in self.context.views.values():
                view.close_all()

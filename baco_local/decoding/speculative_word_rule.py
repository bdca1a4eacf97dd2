"""One answer's steps on a pair of two vocabularies, speculatively: once the aligned
model writes a word, it drafts on for a run of words; the base model reads the whole
run in one batch (its own tokenization of the words) and the router decides at each
word start of the run from the base model's row there, as `word_rule` does after
handing each word over. The run is cut at the first word routed to the base: the
aligned model forgets the words it drafted after that point, the base forgets the
words it read past it, and the base writes its word as the word rule does.

What is exact: every word start is decided from the base model's row after exactly the
text before it, with the word rule's router, lead and switch rule, and each model
draws its tokens from its own distribution given that text, so answers follow the
word rule's distribution (greedy answers are its own, token for token). What is not:
the base reads a run of words in one batch where the word rule reads each word in a
batch of its own, so its rows may differ in llama.cpp's rounding; a word whose
tokenization would merge with the word before it (the join re-tokenizes it) ends the
run before it. Draws are indexed by position (`position_draws`), so the run lengths do
not change a seeded answer.
"""

from __future__ import annotations

from ..core.distribution import pick
from ..core.drawing import router_signals
from ..core.handover import complete_utf8
from ..core.routers import ALIGNED, BASE
from .answer import AnswerState
from .loop_context import LoopContext
from .requests import Draw, Measure, Score, ScoredRun, Want


def speculative_word_rule(ctx: LoopContext, answer: AnswerState):
    """Generator: yields requests, receives their replies, returns the finish reason."""
    owner = candidate = None  # who wrote the last word, and its draw for the next one
    while True:
        if owner == ALIGNED and candidate is not None:
            # The aligned model drafts on; the run's word starts are decided from its rows.
            outcome = yield from _aligned_run(ctx, answer, candidate, None)
        else:
            # The answer's first word, or one after the base's: the word rule's step.
            decided = yield from _decide_now(ctx, answer)
            if decided is None:
                return "context"
            decision, signals = decided
            if candidate is not None and decision == owner:
                token, writer = candidate, owner
            else:
                drawn = yield _draw(ctx, answer, decision)
                if candidate is not None and not ctx.roles[decision].starts_word(drawn):
                    token, writer = candidate, owner  # it would go on the owner's word
                else:
                    token, writer = drawn, decision
            if writer == ALIGNED:
                outcome = yield from _aligned_run(ctx, answer, token, (decision, signals))
            else:
                outcome = yield from _base_word(ctx, answer, token, decision, signals)
        if isinstance(outcome, str):
            return outcome
        owner, candidate = outcome


def _decide_now(ctx: LoopContext, answer: AnswerState):
    """(decision, signals) at a word start, from the base model's row after the answer;
    None when the base cannot read the answer (its context is full)."""
    settings, router = answer.settings, answer.router
    if _leading(ctx, answer, ctx.answer_length(ALIGNED, answer.seq)):
        return ALIGNED, None
    measured = None
    if router.reads_base:
        if not ctx.hand_over(BASE, answer.seq, answer):
            return None
        yield Want((BASE, ALIGNED))
        top_id, top1, entropy = yield Measure()
        measured = (top1, entropy, ctx.roles[BASE].role(top_id))
    route = answer.draws_at(ctx.answer_length(ALIGNED, answer.seq)).route
    signals = router_signals(measured, route)
    return router.decide(signals, settings.gamma), signals


def _aligned_run(ctx: LoopContext, answer: AnswerState, first: int, decided):
    """The aligned model writes the word that starts with `first` and drafts more words;
    the base reads them at once; the run's word starts are decided in order. Returns
    the finish reason, or (owner, candidate) for the next word start."""
    settings, seq = answer.settings, answer.seq
    aligned_start = ctx.answer_length(ALIGNED, seq)
    # --- the base reads the answer so far, while the aligned model drafts whole words ---
    if not ctx.hand_over(BASE, seq, answer):
        return "context"
    starts = [ctx.answer_length(BASE, seq)]  # its length at each word start of the run
    words, draft_text, token = [], b"", first
    limit = ctx.drafts.length(answer)
    ended = False  # the draft reached an end of turn or max_tokens
    while len(words) < limit and not ended:
        word = []
        while True:
            word.append(token)
            position = aligned_start + sum(map(len, words)) + len(word)
            if ctx.ends(ALIGNED, token, answer) or position >= settings.max_tokens:
                ended = True
                break
            if ctx.full(ALIGNED, 1):
                ended = True
                break
            ctx.push(ALIGNED, seq, token)
            draft_text += ctx.piece(ALIGNED, token)
            yield Want((BASE, ALIGNED))
            token = yield Draw(
                ALIGNED, answer.draws_at(position).draft, ctx.recent(ALIGNED, answer)
            )
            if ctx.roles[ALIGNED].starts_word(token) and complete_utf8(
                answer.text_bytes + draft_text
            ):
                break
        words.append(word)
    candidate = None if ended else token
    # --- the base model reads the drafted words in one batch ---------------------------
    # The last one too when a word follows it and the answer decodes alone: its row
    # there routes that word, and the next run starts from it instead of reading the
    # word in a decode of its own (one answer of the default pair, 2-core Intel host:
    # 1.03-1.04x the word rule's characters/s, against 0.94-0.95x reading it in the
    # next run). Among other answers that row goes stale before the next run (their
    # decodes overwrite it) and would be read again, a logits row more per answer
    # (4 answers: 0.60x the word rule, against 0.81x): the next run reads the word.
    base = ctx.views[BASE]
    # (exact scoring reads a run one row at a time and keeps no row fresh either)
    read_last = candidate is not None and ctx.drafts.batch == 1 and not base.exact_runs
    for word in words if read_last else words[:-1]:
        text = b"".join(ctx.piece(ALIGNED, t) for t in word)
        before = base.length(seq)
        if ctx.read_text(BASE, seq, text, append_only=True) is None:
            break  # it merges with the word before it, or does not fit: the run ends here
        read = ctx.answer_length(BASE, seq)
        if read - starts[0] + 1 > base.stream.n_outputs:
            # Its rows would not fit one decode's outputs (a long "word": text without
            # spaces, say), where llama.cpp would abort: the run ends before it.
            base.truncate(seq, before)
            break
        starts.append(read)
    if len(starts) < len(words):  # drafted words that are not scored are drafted again
        kept = sum(map(len, words[: len(starts)]))
        words, candidate = words[: len(starts)], words[len(starts)][0]
        _trim(ctx.views[ALIGNED], seq, ctx.prompt_end(ALIGNED, answer.seq) + aligned_start + kept)
    scored = None
    if answer.router.name != ALIGNED:  # a router that never picks the base reads nothing
        scored = yield Score(starts[-1] - starts[0] + 1)
    # --- walk the word starts: the aligned model's words stand until the base is chosen -
    written = aligned_start
    for j, word in enumerate(words):
        cut = drawn = None
        if j == 0 and decided is not None:  # decided before the run (the aligned writes)
            decision, signals = decided
        else:
            decision, signals = _decide_in_run(ctx, answer, scored, starts, j, written)
            if decision == BASE:
                drawn = _base_draw(ctx, answer, scored, starts, j)
                cut = ctx.roles[BASE].starts_word(drawn)
            ctx.drafts.record(answer, kept=not cut, base_step=decision == BASE)
        if cut or j == len(words) - 1:
            ctx.drafts.record_run(len(words), j + 1)
        if cut:  # the base writes this word: the run ends here
            _trim(ctx.views[ALIGNED], seq, ctx.prompt_end(ALIGNED, answer.seq) + written)
            _trim(ctx.views[BASE], seq, ctx.prompt_end(BASE, answer.seq) + starts[j])
            ctx.synced[BASE][seq] = len(answer.text_bytes)
            return (yield from _base_word(ctx, answer, drawn, decision, signals))
        # the aligned model's word stands (where the base was chosen, its draw would go
        # on the aligned model's word: the switch waits a word)
        for i, token in enumerate(word):
            if ctx.ends(ALIGNED, token, answer):
                return _finish(ctx, answer, "eog", written, starts, j)
            answer.accept(
                token,
                ctx.piece(ALIGNED, token),
                ALIGNED,
                decision if i == 0 else None,
                signals if i == 0 else None,
            )
            written += 1
            if answer.stopped or written >= settings.max_tokens:
                return _finish(
                    ctx, answer, "stop" if answer.stopped else "length", written, starts, j
                )
        ctx.has_read_all(ALIGNED, seq, answer)
    if candidate is None:
        return _finish(ctx, answer, "context", written, starts, len(words) - 1)
    # every word stands: the base has read them all, or all but the last
    unread = b""
    if len(starts) == len(words):
        unread = b"".join(ctx.piece(ALIGNED, t) for t in words[-1])
    ctx.synced[BASE][seq] = len(answer.text_bytes) - len(unread)
    return ALIGNED, candidate


def _decide_in_run(ctx, answer, scored: ScoredRun | None, starts, j, written):
    """(decision, signals) at the run's j-th word start, from the scored row there."""
    router = answer.router
    if _leading(ctx, answer, written):
        return ALIGNED, None
    measured = None
    if router.reads_base:
        row = starts[j] - starts[0]
        top_id = int(scored.top_ids[row])
        measured = (
            float(scored.top1[row]),
            float(scored.entropy[row]),
            ctx.roles[BASE].role(top_id),
        )
    signals = router_signals(measured, answer.draws_at(written).route)
    return router.decide(signals, answer.settings.gamma), signals


def _base_draw(ctx, answer, scored: ScoredRun, starts, j) -> int:
    """The base model's draw at the run's j-th word start (its first token there)."""
    end = ctx.prompt_end(BASE, answer.seq) + starts[j]
    dist = scored.distribution(starts[j] - starts[0], ctx.recent(BASE, answer, end=end))
    return pick(dist, answer.draws_at(answer.accepted).keep)


def _base_word(ctx: LoopContext, answer: AnswerState, token: int, decision, signals):
    """The base model writes one word from `token`; the aligned model then reads it.
    Returns the finish reason, or (BASE, its draw for the next word)."""
    settings, seq = answer.settings, answer.seq
    first = True
    while True:
        if ctx.ends(BASE, token, answer):
            return "eog"
        if ctx.full(BASE, 1):
            return "context"
        ctx.push(BASE, seq, token)
        answer.accept(
            token,
            ctx.piece(BASE, token),
            BASE,
            decision if first else None,
            signals if first else None,
        )
        ctx.has_read_all(BASE, seq, answer)
        first = False
        if answer.stopped:
            return "stop"
        if answer.accepted >= 2 * settings.max_tokens:  # a base "word" that never ends
            return "length"
        token = yield _draw(ctx, answer, BASE)
        if ctx.roles[BASE].starts_word(token) and complete_utf8(answer.text_bytes):
            break
    if not ctx.hand_over(ALIGNED, seq, answer):
        return "context"
    if ctx.answer_length(ALIGNED, seq) >= settings.max_tokens:
        return "length"
    return BASE, token


def _draw(ctx: LoopContext, answer: AnswerState, source: str) -> Draw:
    """A draw from `source`'s row after the answer (keyed by position: the aligned model's
    by its token count, the base's by the answer's)."""
    if source == ALIGNED:
        u = answer.draws_at(ctx.answer_length(ALIGNED, answer.seq)).draft
    else:
        u = answer.draws_at(answer.accepted).keep
    return Draw(source, u, ctx.recent(source, answer))


def _leading(ctx: LoopContext, answer: AnswerState, aligned_length: int) -> bool:
    return aligned_length < answer.settings.lead and answer.router.name != BASE


def _trim(view, seq: int, length: int) -> None:
    if view.length(seq) > length:
        view.truncate(seq, length)


def _finish(ctx: LoopContext, answer: AnswerState, reason: str, written, starts, j) -> str:
    """The answer ends inside the run: each model keeps the answer's tokens it read."""
    _trim(ctx.views[ALIGNED], answer.seq, ctx.prompt_end(ALIGNED, answer.seq) + written)
    _trim(ctx.views[BASE], answer.seq, ctx.prompt_end(BASE, answer.seq) + starts[j])
    return reason

"""One answer's steps on a pair whose two vocabularies differ: collaboration word by word.

The answer's text is the one shared state; each model keeps its own prompt format,
tokens and KV cache. At each word start the router decides, from the base model's
signals there (top-1 probability, entropy, the role of its most likely token), which
model writes the next word. That model draws tokens until one would start a new word
(at a whole UTF-8 character); the finished word then goes to the other model as text
(`LoopContext.hand_over`: a window re-tokenized, rolled back where the join merges).
Leading whitespace belongs to the word that follows it, so a word is handed over
without the space after it.

The word-start token that ended a word is the writer's candidate for the next one: it
is kept if the router picks the writer again. While the base model reads the aligned
model's word to route, the aligned model already reads that candidate (a speculative
push, taken back if the router picks the base), so both decode at once, where the
loop's two models decode side by side (`LoopContext.read_ahead`).

Counting: `max_tokens` counts the answer in the aligned model's tokens, checked as each
word ends; `lead` is the aligned model's first tokens, finished to a whole word.
"""

from __future__ import annotations

from ..core.routers import ALIGNED, BASE
from .answer import AnswerState
from .loop_context import LoopContext, starts_whole_word
from .requests import Draw, Measure, Want


def word_rule(ctx: LoopContext, answer: AnswerState):
    """Generator: yields requests, receives their replies, returns the finish reason."""
    settings, router, seq = answer.settings, answer.router, answer.seq

    def draw(source: str):
        return Draw(source, answer.u_sample(), ctx.recent(source, answer))

    owner = candidate = None  # who wrote the last word, and its draw for the next one
    while True:
        # --- a word starts: who writes it? ----------------------------------------------
        pushed = False  # the candidate is already in the owner's sequence (speculation)
        signals = None
        if ctx.answer_length(ALIGNED, seq) < settings.lead and router.name != BASE:
            decision = ALIGNED  # the aligned model opens the answer
        else:
            measured = None
            if router.reads_base:
                if (
                    owner == ALIGNED
                    and candidate is not None
                    and not ctx.ends(ALIGNED, candidate, answer)
                    and not ctx.full(ALIGNED, 1)
                    and ctx.read_ahead()
                ):
                    ctx.push(ALIGNED, seq, candidate)  # read it while the base reads
                    pushed = True
                yield Want((BASE, ALIGNED))
                top_id, top1, entropy = yield Measure()
                measured = (top1, entropy, ctx.roles[BASE].role(top_id))
            signals = answer.signals(measured)
            decision = router.decide(signals, settings.gamma)
        if candidate is not None and decision == owner:
            token, writer = candidate, owner
        else:
            if pushed:  # the router picked the other model: take the candidate back
                view = ctx.views[ALIGNED]
                view.truncate(seq, view.length(seq) - 1)
                pushed = False
            drawn = yield draw(decision)
            if candidate is not None and not ctx.roles[decision].starts_word(drawn):
                token, writer = candidate, owner  # it would go on the owner's word: wait
            else:
                token, writer = drawn, decision
        # --- the writer writes one word ---------------------------------------------------
        first = True
        while True:
            if ctx.ends(writer, token, answer):
                return "eog"
            if not (first and pushed):
                if ctx.full(writer, 1):
                    return "context"
                ctx.push(writer, seq, token)
            answer.accept(
                token,
                ctx.piece(writer, token),
                writer,
                decision if first else None,
                signals if first else None,
            )
            ctx.has_read_all(writer, seq, answer)
            first = False
            if answer.stopped:
                return "stop"
            if writer == ALIGNED and ctx.answer_length(ALIGNED, seq) >= settings.max_tokens:
                return "length"
            if answer.accepted >= 2 * settings.max_tokens:  # a base "word" that never ends
                return "length"
            token = yield draw(writer)
            if starts_whole_word(ctx, writer, token, answer):
                break
        owner, candidate = writer, token
        # --- the other model reads the word (the base only if it can be asked) ------------
        other = BASE if writer == ALIGNED else ALIGNED
        if (other == ALIGNED or router.name != ALIGNED) and not ctx.hand_over(other, seq, answer):
            return "context"
        if ctx.answer_length(ALIGNED, seq) >= settings.max_tokens:
            return "length"

"""One answer's steps on a pair that shares one vocabulary, as the batched loop runs it.

Written for one answer of many (a single answer is a batch of one): at each step,
route at a word start and draw the token from the chosen model; both models read
every token. The owner of a word draws first; a draw that continues
the word is kept without routing. If the chosen model's draw would continue the
owner's word, the switch waits for the next word. The first `lead` tokens come from the
aligned model. Requests (`Measure`, `Draw`, `Want`) go to the loop, which answers all
answers' requests of a kind at once.
"""

from __future__ import annotations

from ..core.routers import ALIGNED, BASE, MIX
from .answer import AnswerState
from .loop_context import LoopContext
from .requests import Draw, Measure, Want


def token_rule(ctx: LoopContext, answer: AnswerState):
    """Generator: yields requests, receives their replies, returns the finish reason."""
    settings, router, seq = answer.settings, answer.router, answer.seq
    roles = ctx.roles[ALIGNED]
    possible = (router.name,) if router.name in (BASE, ALIGNED) else (BASE, ALIGNED)

    def draw(source: str):
        return Draw(source, answer.u_sample(), ctx.recent(ALIGNED, answer))

    owner = None  # the model that started the current word
    for _ in range(settings.max_tokens):
        decision = signals = None
        if answer.accepted < settings.lead and router.name != BASE:
            # The aligned model opens the answer.
            token, source = (yield draw(ALIGNED)), ALIGNED
        else:
            # Ask for both models at once: the step may need either.
            yield Want(possible)
            measured = None
            if router.reads_base:
                top_id, top1, entropy = yield Measure()
                measured = (top1, entropy, ctx.roles[BASE].role(top_id))
            # The owner of the current word draws first; a continuation needs no routing.
            candidate = (yield draw(owner)) if owner else None
            if candidate is not None and not roles.starts_word(_token(candidate)):
                token, source = candidate, owner
            else:
                # A word starts: the router decides who writes it.
                signals = answer.signals(measured)
                decision = router.decide(signals, settings.gamma)
                if decision == owner:
                    token, source = candidate, owner
                else:
                    drawn = yield draw(decision)
                    if candidate is not None and not roles.starts_word(_token(drawn)):
                        token, source = candidate, owner  # the switch waits a word
                    else:
                        token, source = drawn, decision
        owner = source
        token, credited = token if source == MIX else (token, source)
        # An end-of-turn token ends the answer; it is not shown.
        if ctx.ends(ALIGNED, token, answer) or ctx.ends(BASE, token, answer):
            return "eog"
        # Show the token; a stop string ends the answer.
        answer.accept(token, ctx.piece(ALIGNED, token), credited, decision, signals)
        if answer.stopped:
            return "stop"
        # Both models read the token (when they are next decoded).
        if ctx.full(BASE, 1) or ctx.full(ALIGNED, 1):
            return "context"
        for role in (BASE, ALIGNED):
            ctx.push(role, seq, token)
    return "length"


def _token(drawn) -> int:
    """A draw's token id (an ensemble draw is (token, credited model))."""
    return drawn[0] if isinstance(drawn, tuple) else drawn

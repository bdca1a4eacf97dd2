"""One answer's steps on a pair that shares one vocabulary, speculatively: the aligned
model drafts a run of tokens, the base model reads the whole run in one batch, and the
run is walked position by position with the collaboration rule of `token_rule`.

At each position the router decides from the base model's signals there, exactly as
the token rule does; `core.speculative.step_target` turns the rule's two draws (the
word's owner first, then the router's choice when a word starts) into one
distribution, and the draft is kept or replaced by speculative sampling, so the answer
follows the token rule's distribution. A position whose rule is the aligned model's
own draw keeps its draft outright; a base-routed position keeps it with probability
min(1, p_base / p_aligned) (more, where the rule would keep the owner's word start).
A position that credits the base but keeps the token does not end the run: the draft
is still the text both models hold. The first position whose token differs ends it:
both models forget the rest of the run and read the new token instead.

A run of one draft (every run in company: `draft_plan`) asks for both models at once,
as the token rule does, so the base reads the last token in the aligned model's step
instead of a step of its own. Measured on a 2-core host, 8 answers of the in-context
Gemma pair: 44-46 tokens/s before, 49-51 after.

Randomness is drawn by position (`position_draws`), so a seeded answer does not depend
on how long the runs were; greedy answers are the token rule's, token for token.
"""

from __future__ import annotations

from ..core.distribution import pick
from ..core.drawing import router_signals
from ..core.routers import ALIGNED, BASE
from ..core.speculative import credit_decision, keep_or_replace, step_target
from .answer import AnswerState
from .loop_context import LoopContext
from .requests import Propose, Score, ScoredRun, Want


def speculative_rule(ctx: LoopContext, answer: AnswerState):
    """Generator: yields requests, receives their replies, returns the finish reason."""
    settings, seq = answer.settings, answer.seq
    owner = None  # the model that started the current word
    while answer.accepted < settings.max_tokens:
        held = ctx.answer_length(ALIGNED, seq)  # what both models hold: the answer so far
        # --- the aligned model drafts a run ------------------------------------------------
        length = min(ctx.drafts.length(answer), settings.max_tokens - answer.accepted)
        if length == 1:
            # The base reads the last token as the aligned model does, in one step, so
            # that the run's one row is at hand when the draft comes.
            yield Want((ALIGNED, BASE))
        drafts, proposals = [], []
        while len(drafts) < length:
            if drafts:
                if ctx.full(ALIGNED, 1) or ctx.full(BASE, len(drafts)):
                    break
                ctx.push(ALIGNED, seq, drafts[-1])
            proposal = yield Propose(ALIGNED, ctx.recent(ALIGNED, answer))
            drafts.append(pick(proposal, answer.draws_at(held + len(drafts)).draft))
            proposals.append(proposal)
            if ctx.ends(ALIGNED, drafts[-1], answer):
                break
        # --- the base model reads it in one batch ------------------------------------------
        for token in drafts[:-1]:
            ctx.push(BASE, seq, token)
        scored = yield Score(len(drafts))
        # --- walk it: keep what the rule writes, cut at the first token that differs -------
        for j, (draft, proposal) in enumerate(zip(drafts, proposals, strict=True)):
            step = _step(ctx, answer, owner, scored, j, proposal, draft)
            token, credit, decision, signals, base_step = step
            ctx.drafts.record(answer, kept=token == draft, base_step=base_step)
            if token != draft or j == len(drafts) - 1:
                ctx.drafts.record_run(len(drafts), j + 1)
            owner = credit
            if ctx.ends(ALIGNED, token, answer) or ctx.ends(BASE, token, answer):
                ctx.keep_only(seq, held + j)
                return "eog"
            answer.accept(token, ctx.piece(ALIGNED, token), credit, decision, signals)
            if answer.stopped or answer.accepted >= settings.max_tokens:
                ctx.keep_only(seq, held + j)
                return "stop" if answer.stopped else "length"
            if token != draft:  # both models forget the rest of the run and read the token
                ctx.keep_only(seq, held + j)
                break
        else:  # every draft kept: both read the last one
            token = drafts[-1]
        if ctx.full(ALIGNED, 1) or ctx.full(BASE, 1):
            return "context"  # the token is shown; no model can read it
        _read(ctx, seq, token)
    return "length"


def _step(ctx: LoopContext, answer: AnswerState, owner, scored: ScoredRun, j, proposal, draft):
    """(token, credited model, router decision or None, signals or None, whether the
    rule called for the base model) at run row j."""
    settings, router = answer.settings, answer.router
    position = answer.accepted
    if position < settings.lead and router.name != BASE:
        return draft, ALIGNED, None, None, False  # the aligned model opens the answer
    draws = answer.draws_at(position)
    measured = None
    if router.reads_base:
        top_id = int(scored.top_ids[j])
        measured = (float(scored.top1[j]), float(scored.entropy[j]), ctx.roles[BASE].role(top_id))
    signals = router_signals(measured, draws.route)
    decision = router.decide(signals, settings.gamma)
    proposals = {ALIGNED: proposal}
    if BASE in (owner, decision):
        recent = ctx.recent(BASE, answer, end=ctx.prompt_end(BASE, answer.seq) + position)
        proposals[BASE] = scored.distribution(j, recent)
    target = step_target(
        proposals[owner] if owner else None,
        proposals[decision],
        decision == owner,
        ctx.roles[ALIGNED].starts_word,
    )
    token, _ = keep_or_replace(target.dist, proposal, draft, draws.keep, draws.residual)
    credit = decision if credit_decision(target, token, draws.credit) else owner
    base_step = BASE in (owner, decision)
    if owner is not None and not ctx.roles[ALIGNED].starts_word(token):
        return token, credit, None, None, base_step  # a word goes on: no routing here
    return token, credit, decision, signals, base_step


def _read(ctx: LoopContext, seq: int, token: int) -> None:
    """Both models read `token` (at their next decode)."""
    for role in (BASE, ALIGNED):
        ctx.push(role, seq, token)

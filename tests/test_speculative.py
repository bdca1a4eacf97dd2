"""Speculative collaboration through the real llama.cpp: the same answers in distribution as
the loop without it, the same greedy answers token for token, caches that hold exactly the
answer after runs were cut."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from baco_local import Pair
from baco_local.core.routers import ALIGNED, BASE
from baco_local.core.speculative import keep_or_replace
from baco_local.decoding import batch_loop, speculative_rule
from baco_local.decoding.draft_plan import DraftCosts

PROMPT = "Tell me a story about the sea"
GREEDY_ROUTERS = ("p", "p-punc", "h-punc", "fc", "nudging", "base", "aligned")

# A batch of k rows costs little more than one: runs grow to their longest.
CHEAP_BATCHES = DraftCosts(1.0, tuple(1 + 0.05 * k for k in range(8)))


@pytest.fixture
def long_runs(monkeypatch):
    """Runs as long as the acceptance allows, whatever this host measured."""
    monkeypatch.setattr(batch_loop, "draft_costs", lambda pair, threads: CHEAP_BATCHES)


def tokens_and_sources(results):
    return [[(t.id, t.source, t.routed, t.decision) for t in r.tokens] for r in results]


@pytest.mark.parametrize("router", GREEDY_ROUTERS)
@pytest.mark.parametrize("n", [1, 3])
def test_greedy_answers_equal_the_loop_without_speculation(tiny_pair, long_runs, router, n):
    for lead in (0, 3):
        kw = dict(router=router, temperature=0, max_tokens=48, seed=3, lead=lead)
        off = tiny_pair.brainstorm(PROMPT, n=n, speculative="off", **kw)
        on = tiny_pair.brainstorm(PROMPT, n=n, speculative="on", **kw)
        assert tokens_and_sources(on) == tokens_and_sources(off), (router, lead)
        assert all(r.finish_reason == "length" and len(r.tokens) == 48 for r in on)


def test_a_seed_replays_and_run_lengths_do_not_change_the_answer(tiny, monkeypatch):
    """Draws are indexed by position: runs of 1 and runs of 8 give the same answer."""
    answers = []
    for costs in (CHEAP_BATCHES, DraftCosts(1.0, tuple(1.0 + 2 * k for k in range(8)))):
        monkeypatch.setattr(batch_loop, "draft_costs", lambda pair, threads, c=costs: c)
        with Pair.load(base=tiny.base, aligned=tiny.aligned, n_ctx=512, n_threads=2) as pair:
            kw = dict(router="p-punc", gamma=0.6, seed=21, max_tokens=40, speculative="on")
            first = pair.generate(PROMPT, **kw)
            assert tokens_and_sources([first]) == tokens_and_sources([pair.generate(PROMPT, **kw)])
            answers.append(tokens_and_sources([first]))
    assert answers[0] == answers[1]


def test_after_cut_runs_both_models_hold_exactly_the_answer(tiny_pair, long_runs):
    answers = tiny_pair.stream_answers(
        PROMPT, 3, router="p", gamma=0.9, seed=5, max_tokens=40, speculative="on", lead=0
    )
    results = answers.run()
    replaced = 0
    for result, history in zip(results, answers.histories, strict=True):
        ids = [t.id for t in result.tokens]
        replaced += sum(t.source == BASE for t in result.tokens)
        for role in (BASE, ALIGNED):  # the last token is shown, never read back
            assert history[role] == ids[: len(history[role])]
            assert len(history[role]) >= len(ids) - 1
    assert replaced > 0  # the base wrote: runs were cut or re-credited


def test_the_cache_after_speculation_is_a_fresh_read_of_the_text(tiny, long_runs):
    """What the base model's context holds after an answer whose runs were cut continues
    like the same tokens read afresh, one at a time: no drafted token is left behind."""
    from baco_local.backend import Stream

    with Pair.load(base=tiny.base, aligned=tiny.aligned, n_ctx=512, n_threads=2) as pair:
        result = pair.generate(
            PROMPT, router="p", gamma=0.9, seed=8, max_tokens=30, speculative="on", lead=0
        )
        assert sum(t.source == BASE for t in result.tokens) > 0
        base = pair.loaded.streams[BASE]
        held, start = list(base.tokens), result.stats.prompt_tokens[BASE]
        assert held[start:] == [t.id for t in result.tokens][: len(held) - start]
        next_token = result.tokens[-1].id
        base.push(next_token)
        base.catch_up()
        fresh = Stream(pair.loaded.base_model, n_ctx=512, n_batch=64, n_threads=2)
        fresh.start(held[:start])
        fresh.catch_up()
        for token in held[start:] + [next_token]:
            fresh.push(token)
            fresh.catch_up()
        assert np.allclose(fresh.logits(), base.logits(), atol=1e-4)
        fresh.close()


# --- the distribution, over a fixed set of seeds -----------------------------------------


def chi_square_p_value(first: Counter, second: Counter) -> float:
    """p-value of a chi-square test that two samples of outcomes share one distribution
    (cells with fewer than 10 expected pooled into one; Wilson-Hilferty's normal
    approximation of the chi-square tail)."""
    n1, n2 = sum(first.values()), sum(second.values())
    cells = sorted(set(first) | set(second), key=repr)
    rows, other = [], [0, 0]
    for cell in cells:
        a, b = first[cell], second[cell]
        if (a + b) * min(n1, n2) / (n1 + n2) < 10:
            other[0] += a
            other[1] += b
        else:
            rows.append((a, b))
    rows.append(tuple(other))
    stat, total = 0.0, n1 + n2
    for a, b in rows:
        for count, n in ((a, n1), (b, n2)):
            expected = (a + b) * n / total
            if expected > 0:
                stat += (count - expected) ** 2 / expected
    df = len(rows) - 1
    z = ((stat / df) ** (1 / 3) - (1 - 2 / (9 * df))) / math.sqrt(2 / (9 * df))
    return 0.5 * math.erfc(z / math.sqrt(2))


def first_steps(pair, speculative: str, seeds: range) -> Counter:
    """The joint outcome of the first three tokens and who wrote them, per seed."""
    outcomes = Counter()
    for start in range(seeds.start, seeds.stop, 8):
        results = pair.brainstorm(
            PROMPT,
            n=8,
            router="p-punc",
            gamma=0.9,
            lead=0,
            temperature=1.0,
            top_k=3,
            min_p=0.0,
            seed=start,
            max_tokens=3,
            speculative=speculative,
        )
        for r in results:
            outcomes[tuple((t.id, t.source) for t in r.tokens)] += 1
    return outcomes


@pytest.fixture(scope="module")
def distribution_pair(tiny):
    with Pair.load(base=tiny.base, aligned=tiny.aligned, n_ctx=512, n_threads=2) as pair:
        yield pair


def test_speculative_answers_follow_the_same_distribution(distribution_pair, long_runs):
    off = first_steps(distribution_pair, "off", range(0, 2400))
    on = first_steps(distribution_pair, "on", range(100_000, 102_400))
    assert len(off) >= 8  # enough outcomes to tell distributions apart
    assert sum(1 for outcome in off for _, source in outcome if source == BASE) > 0
    assert chi_square_p_value(off, on) > 1e-3


def test_a_variant_without_the_residual_draw_fails_the_same_test(
    distribution_pair, long_runs, monkeypatch
):
    """The negative control: redrawing a replaced draft from the target itself (instead of
    from the residual) over-weights tokens the draft already favours."""

    def biased(target, draft, token, u_keep, u_residual):
        kept_token, kept = keep_or_replace(target, draft, token, u_keep, u_residual)
        if kept:
            return kept_token, True
        from baco_local.core.distribution import pick

        return pick(target, u_residual), False

    off = first_steps(distribution_pair, "off", range(0, 2400))
    monkeypatch.setattr(speculative_rule, "keep_or_replace", biased)
    wrong = first_steps(distribution_pair, "on", range(100_000, 102_400))
    assert chi_square_p_value(off, wrong) < 1e-3


# --- the real Gemma 3 270M ---------------------------------------------------------------


@pytest.mark.gemma
def test_greedy_answers_equal_the_loop_without_speculation_on_gemma(gemma_path, long_runs):
    """With runs scored one token per decode, the base model's rows are bit for bit those
    of the loop without speculation, so greedy answers are too (rows scored in one batch
    may differ in rounding: see the README)."""
    with Pair.load(base=gemma_path, n_ctx=1024, exact_scoring=True) as pair:
        for router in ("p", "p-punc", "h-punc", "fc", "nudging"):
            kw = dict(router=router, temperature=0, max_tokens=40, seed=1)
            off = pair.generate("Invent a new board game.", speculative="off", **kw)
            on = pair.generate("Invent a new board game.", speculative="on", **kw)
            assert tokens_and_sources([on]) == tokens_and_sources([off]), router
            assert len(on.tokens) >= 8  # long enough to hold word starts of both models


# --- pairs of two vocabularies (the speculative word rule) ---------------------------------


@pytest.fixture(scope="module")
def word_pair(tiny):
    with Pair.load(base=tiny.base, aligned=tiny.small_vocab, n_ctx=1024, n_threads=2) as pair:
        assert pair.loaded.word_level
        yield pair


@pytest.mark.parametrize("router", GREEDY_ROUTERS)
def test_greedy_word_level_answers_equal_the_word_rule(word_pair, long_runs, router):
    for lead, n in ((0, 1), (3, 2)):
        kw = dict(router=router, temperature=0, max_tokens=40, seed=3, lead=lead)
        off = word_pair.brainstorm(PROMPT, n=n, speculative="off", **kw)
        on = word_pair.brainstorm(PROMPT, n=n, speculative="on", **kw)
        assert tokens_and_sources(on) == tokens_and_sources(off), (router, lead)
        assert all(len(r.tokens) >= 10 for r in on)


@pytest.mark.parametrize("n", [1, 2])  # alone, the base reads a run's last word in it
def test_after_cut_word_runs_each_model_holds_the_answer_text(word_pair, long_runs, n):
    answers = word_pair.stream_answers(
        PROMPT, n, router="p-punc", gamma=0.5, seed=5, max_tokens=40, speculative="on", lead=0
    )
    results = answers.run()
    models = {BASE: word_pair.loaded.base_model, ALIGNED: word_pair.loaded.aligned_model}
    for result, history in zip(results, answers.histories, strict=True):
        assert {t.source for t in result.tokens} == {BASE, ALIGNED}
        text = "".join(t.text for t in result.tokens).encode()
        for role, tokens in history.items():
            read = b"".join(models[role].piece(t) for t in tokens)
            assert text.startswith(read) and len(read) >= len(text) // 2, role


def test_a_run_of_long_words_never_asks_a_decode_for_more_rows_than_it_holds(
    tiny, long_runs, monkeypatch
):
    # Words of many tokens (text without spaces): a decode that asks for more logits
    # rows than its context holds makes llama.cpp abort the process.
    from baco_local.backend.context import Context

    asked = []
    decode = Context.decode

    def counted(context, rows):
        asked.append(sum(row.logits for row in rows))
        assert asked[-1] <= context.n_outputs, "llama.cpp would abort here"
        return decode(context, rows)

    monkeypatch.setattr(Context, "decode", counted)
    with Pair.load(
        base=tiny.base, aligned=tiny.small_vocab, n_ctx=1024, n_threads=2, n_parallel=1
    ) as pair:
        role = pair.loaded.roles[ALIGNED]
        starts = type(role).starts_word
        monkeypatch.setattr(  # one aligned token in five starts a word
            type(role),
            "starts_word",
            lambda self, t: starts(self, t) and (self is not role or t % 5 == 0),
        )
        for seed in range(4):
            result = pair.generate(
                PROMPT, router="p", gamma=0.05, seed=seed, max_tokens=60, speculative="on", lead=0
            )
            assert len(result.tokens) >= 40
    assert max(asked) > pair.loaded.streams[BASE].n_outputs // 2  # long runs were scored


def first_words(pair, speculative: str, seeds: range) -> Counter:
    """The joint outcome of the first four tokens and who wrote them, per seed (the
    aligned model opens with a word, then the router decides at each word start)."""
    outcomes = Counter()
    for start in range(seeds.start, seeds.stop, 8):
        results = pair.brainstorm(
            PROMPT,
            n=8,
            router="p-punc",
            gamma=0.5,
            lead=2,
            temperature=1.0,
            top_k=2,
            min_p=0.0,
            seed=start,
            max_tokens=4,
            speculative=speculative,
        )
        for r in results:
            outcomes[tuple((t.text, t.source) for t in r.tokens[:4])] += 1
    return outcomes


def test_speculative_word_level_answers_follow_the_same_distribution(word_pair, long_runs):
    off = first_words(word_pair, "off", range(0, 1600))
    on = first_words(word_pair, "on", range(100_000, 101_600))
    assert sum(1 for outcome in off for _, source in outcome if source == BASE) > 0
    assert chi_square_p_value(off, on) > 1e-3


def test_a_word_variant_that_never_cuts_a_run_fails_the_same_test(
    word_pair, long_runs, monkeypatch
):
    from baco_local.decoding import speculative_word_rule

    off = first_words(word_pair, "off", range(0, 1600))
    monkeypatch.setattr(speculative_word_rule, "_decide_in_run", lambda *args: (ALIGNED, None))
    wrong = first_words(word_pair, "on", range(100_000, 101_600))
    assert chi_square_p_value(off, wrong) < 1e-3

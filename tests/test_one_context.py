"""Both roles on one model share one llama.cpp context: a step that needs both models
decodes their tokens in one llama_decode, and answers stay exact on the tiny models."""

from __future__ import annotations

import pytest

from baco_local import Pair
from baco_local.backend.context import Context
from baco_local.core.routers import ALIGNED, BASE


def tokens_and_sources(results):
    return [[(t.id, t.source) for t in r.tokens] for r in results]


def count_decodes(monkeypatch):
    """Count llama_decode calls and the rows of each, from here on."""
    calls = []
    real = Context.decode

    def counting(self, rows):
        calls.append(len(rows))
        return real(self, rows)

    monkeypatch.setattr(Context, "decode", counting)
    return calls


@pytest.mark.parametrize("aligned", ["in-context", "same-file"])
def test_both_roles_share_one_context_with_sequences_of_their_own(tiny, aligned):
    partner = tiny.base if aligned == "same-file" else "in-context"
    with Pair.load(base=tiny.base, aligned=partner, n_ctx=2048, n_parallel=3) as pair:
        streams = pair.loaded.streams
        assert pair.loaded.one_context
        assert streams[BASE].context is streams[ALIGNED].context
        assert (streams[BASE].seq, streams[ALIGNED].seq) == (0, 3)
        # each role keeps the cells and sequences it would have in a context of its own
        assert streams[BASE].n_ctx == streams[ALIGNED].n_ctx == 2048
        assert streams[BASE].n_seq_max == streams[ALIGNED].n_seq_max == 3
        assert streams[BASE].context.n_ctx >= 4096


def test_two_model_files_keep_a_context_each(tiny):
    with Pair.load(base=tiny.base, aligned=tiny.aligned, n_ctx=512) as pair:
        streams = pair.loaded.streams
        assert not pair.loaded.one_context
        assert streams[BASE].context is not streams[ALIGNED].context


def test_a_step_that_needs_both_models_is_one_decode(tiny, monkeypatch):
    settings = dict(router="p-punc", seed=4, max_tokens=24, speculative="off")
    per_token = {}
    for one in (True, False):
        with Pair.load(base=tiny.base, n_ctx=2048, one_context=one) as pair:
            pair.generate("The cat", **settings)  # prompt read and cached: only steps count
            calls = count_decodes(monkeypatch)
            result = pair.generate("The cat", ignore_end=True, **settings)
            monkeypatch.undo()
        assert len(result.tokens) == 24
        per_token[one] = len(calls) / 24
    # a context per role: each model decodes at every token; one context: one decode
    assert per_token[False] >= 1.9
    assert per_token[True] <= 1.1


@pytest.mark.parametrize("router", ["p-punc", "nudging", "h-punc", "base", "aligned", "ensemble"])
def test_one_context_writes_what_a_context_per_role_writes(tiny, router):
    """The tiny models' numbers do not depend on the company of a decode, so the
    layout changes nothing but the speed: the same tokens from the same models."""
    prompts = ["The cat", "A dog ran"]
    results = {}
    for one in (True, False):
        with Pair.load(base=tiny.base, n_ctx=2048, one_context=one) as pair:
            answers = [
                pair.generate(p, router=router, seed=seed, max_tokens=32, speculative=mode)
                for p in prompts
                for seed in (1, 2)
                for mode in ("off", "on")
            ]
            for mode in ("off", "on"):  # "auto" would follow the host's timings
                answers += pair.brainstorm(
                    "The cat", n=3, router=router, seed=7, max_tokens=24, speculative=mode
                )
            results[one] = tokens_and_sources(answers)
    assert results[True] == results[False]


def test_exact_scoring_keeps_a_context_per_role(tiny):
    with Pair.load(base=tiny.base, n_ctx=2048, exact_scoring=True) as pair:
        assert not pair.loaded.one_context


def test_more_answers_than_one_context_holds_for_both_roles_get_a_context_each(tiny):
    # llama.cpp holds at most 256 sequences in a context: 2 x 129 answers do not fit
    with Pair.load(base=tiny.base, n_ctx=2048, n_parallel=129) as pair:
        assert not pair.loaded.one_context
        assert len(pair.generate("The cat", max_tokens=4, seed=1).tokens) == 4
    with Pair.load(base=tiny.base, n_ctx=2048, n_parallel=128) as pair:
        assert pair.loaded.one_context

"""Pairs of two vocabularies collaborate word by word, through text (the word rule)."""

from __future__ import annotations

import gguf_factory as factory
import pytest

from baco_local import Pair
from baco_local.core.routers import ALIGNED, BASE, ROUTERS
from baco_local.errors import SettingsError

PROMPT = "Tell me a story about the sea"


@pytest.fixture(scope="module")
def merging(tmp_path_factory):
    """A tokenizer that merges a word with the punctuation after it (" cat.")."""
    folder = tmp_path_factory.mktemp("merging")
    return factory.write_tiny_model(
        folder / "tiny-merging.gguf",
        seed=5,
        vocab="merging",
        chat_template=factory.TINY_CHAT_TEMPLATE,
    )


@pytest.fixture(scope="module")
def word_pair(tiny, merging):
    pair = Pair.load(base=tiny.base, aligned=merging, n_ctx=1024, n_threads=2)
    yield pair
    pair.close()


def piece_bytes(model, ids):
    return b"".join(model.piece(t) for t in ids)


def test_the_pair_loads_word_level_and_says_so(word_pair):
    assert word_pair.loaded.word_level
    assert word_pair.label.endswith("(cross-tokenizer)")


@pytest.mark.parametrize("router", sorted(set(ROUTERS) - {"ensemble"}))
def test_every_router_runs(word_pair, router):
    result = word_pair.generate(PROMPT, router=router, seed=3, max_tokens=16)
    assert result.stats.tokens > 0 and result.text
    if router == "base":
        assert result.stats.base_fraction == 1.0
    if router == "aligned":
        assert result.stats.base_fraction == 0.0


def test_the_ensemble_is_refused_with_the_reason(word_pair):
    with pytest.raises(SettingsError) as error:
        word_pair.generate(PROMPT, router="ensemble")
    assert "one vocabulary" in error.value.message and "random" in error.value.hint


def test_a_word_begun_by_one_model_is_finished_by_it(word_pair):
    roles = word_pair.loaded.roles
    for seed in range(4):
        result = word_pair.generate(PROMPT, router="random", gamma=0.5, seed=seed, max_tokens=40)
        assert {t.source for t in result.tokens} == {BASE, ALIGNED}  # both write words
        for before, token in zip(result.tokens, result.tokens[1:]):
            if not roles[token.source].starts_word(token.id):
                assert token.source == before.source


def test_each_model_reads_the_answer_as_text_and_rollbacks_repair_merges(word_pair):
    loaded = word_pair.loaded
    before = word_pair.loop.context.handover.rollbacks
    for seed in range(6):
        stream = word_pair.stream_answers(
            PROMPT, 2, router="random", gamma=0.5, seed=10 * seed, max_tokens=48
        )
        results = stream.run()
        for history, result in zip(stream.histories, results, strict=True):
            text = result.text.encode()
            for role, model in ((BASE, loaded.base_model), (ALIGNED, loaded.aligned_model)):
                read = piece_bytes(model, history[role])
                # every model holds the answer's text, up to the last word it was given
                assert text.startswith(read) and len(read) >= len(text) - 40
    # " cat" then "." re-tokenized as " cat." at least once
    assert word_pair.loop.context.handover.rollbacks > before


def test_max_tokens_counts_the_aligned_models_tokens(word_pair):
    stream = word_pair.stream_answers(PROMPT, 2, router="p-punc", seed=4, max_tokens=20)
    stream.run()
    for history, result in zip(stream.histories, stream.results, strict=True):
        if result.finish_reason == "length":
            assert len(history[ALIGNED]) >= 20


def test_no_special_token_reaches_the_text(word_pair):
    for seed in range(3):
        result = word_pair.generate(PROMPT, router="random", gamma=0.5, seed=seed, max_tokens=48)
        for marker in ("<|end|>", "<|user|>", "<|assistant|>", "<s>", "</s>", "<unk>"):
            assert marker not in result.text


def test_show_source_and_json_work_per_word(capsys, tiny, merging):
    import json

    from baco_local.cli import main

    code = main(
        [
            "run",
            PROMPT,
            "--base",
            str(tiny.base),
            "--aligned",
            str(merging),
            "--seed",
            "2",
            "--max-tokens",
            "16",
            "--router",
            "random",
            "--gamma",
            "0.5",
            "--json",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    record = json.loads(out)
    assert record["pair"].endswith("(cross-tokenizer)")
    assert {t["source"] for t in record["tokens"]} <= {BASE, ALIGNED}
    assert "".join(t["text"] for t in record["tokens"]) == record["text"]


def test_the_aligned_model_reads_ahead_only_where_the_models_decode_side_by_side(tiny, monkeypatch):
    # Its candidate for the next word is read while the base routes: free side by side,
    # a decode thrown away one after the other whenever the router picks the base.
    from baco_local.backend.context import Context
    from baco_local.decoding.thread_plan import ONE_AFTER_THE_OTHER, SIDE_BY_SIDE, ThreadPlanner

    decode = Context.decode
    answers, aligned_decodes = {}, {}
    for plan in (SIDE_BY_SIDE, ONE_AFTER_THE_OTHER):
        monkeypatch.setattr(ThreadPlanner, "best", lambda self, kind, plan=plan: plan)
        monkeypatch.setattr(ThreadPlanner, "choose", lambda self, kind, plan=plan: plan)
        with Pair.load(base=tiny.base, aligned=tiny.small_vocab, n_threads=2) as pair:
            aligned = pair.loaded.aligned_model
            counted = []

            def counting(context, rows, counted=counted, aligned=aligned):
                counted.append(context.model is aligned)
                return decode(context, rows)

            monkeypatch.setattr(Context, "decode", counting)
            result = pair.generate(
                PROMPT, router="p-punc", gamma=0.5, seed=1, max_tokens=60, speculative="off"
            )
            monkeypatch.setattr(Context, "decode", decode)
        answers[plan] = [(t.id, t.source) for t in result.tokens]
        aligned_decodes[plan] = sum(counted)
    assert answers[SIDE_BY_SIDE] == answers[ONE_AFTER_THE_OTHER]
    assert {source for _, source in answers[SIDE_BY_SIDE]} == {BASE, ALIGNED}
    assert aligned_decodes[ONE_AFTER_THE_OTHER] < aligned_decodes[SIDE_BY_SIDE]

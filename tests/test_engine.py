"""The decode loop on tiny GGUF pairs through the real llama.cpp."""

import pytest

from baco_local import Pair
from baco_local.core.routers import ALIGNED, BASE, ROUTERS

PROMPT = "The cat"


@pytest.mark.parametrize("router", sorted(ROUTERS))
def test_every_router_generates_and_reports_sources(tiny_pair, router):
    result = tiny_pair.generate(PROMPT, router=router, seed=7, max_tokens=24)
    assert result.stats.tokens == len(result.tokens) > 0
    assert result.text == "".join(t.text for t in result.tokens)
    assert {t.source for t in result.tokens} <= {BASE, ALIGNED}
    assert result.settings.router == router
    if router == "aligned":
        assert result.stats.base_fraction == 0
    if router == "base":
        assert result.stats.base_fraction == 1


def test_a_seed_replays_exactly_and_another_seed_differs(tiny_pair):
    first = tiny_pair.generate(PROMPT, seed=11, max_tokens=32)
    again = tiny_pair.generate(PROMPT, seed=11, max_tokens=32)
    other = tiny_pair.generate(PROMPT, seed=12, max_tokens=32)
    assert [t.id for t in first.tokens] == [t.id for t in again.tokens]
    assert [t.source for t in first.tokens] == [t.source for t in again.tokens]
    assert [t.id for t in first.tokens] != [t.id for t in other.tokens]


def test_no_seed_draws_one_and_reports_it(tiny_pair):
    result = tiny_pair.generate(PROMPT, max_tokens=8)
    replay = tiny_pair.generate(PROMPT, seed=result.settings.seed, max_tokens=8)
    assert isinstance(result.settings.seed, int)
    assert [t.id for t in replay.tokens] == [t.id for t in result.tokens]


def test_a_word_begun_by_one_model_is_finished_by_it(tiny_pair):
    roles = tiny_pair.roles
    continued = 0
    for seed in range(6):
        tokens = tiny_pair.generate(
            PROMPT, router="random", gamma=0.5, seed=seed, max_tokens=48
        ).tokens
        for previous, token in zip(tokens, tokens[1:]):
            if not roles.starts_word(token.id):
                continued += 1
                assert token.source == previous.source and not token.routed
            if token.routed:
                assert roles.starts_word(token.id) or token.source == previous.source
    assert continued > 0  # the tiny vocabulary has word pieces: the rule was exercised


def test_signals_are_reported_at_routed_tokens(tiny_pair):
    result = tiny_pair.generate(PROMPT, router="p", gamma=0.5, seed=3, max_tokens=32)
    routed = [t for t in result.tokens if t.routed]
    assert routed
    for t in routed:
        assert 0 < t.top1_prob <= 1 and t.entropy >= 0
        assert t.decision == (BASE if t.top1_prob < 0.5 else ALIGNED)


def test_more_gamma_sends_more_tokens_to_the_base(tiny_pair):
    def base_share(gamma):
        results = [
            tiny_pair.generate(PROMPT, router="p", gamma=gamma, seed=s, max_tokens=32)
            for s in range(4)
        ]
        return sum(r.stats.base_tokens for r in results) / sum(r.stats.tokens for r in results)

    assert base_share(0.1) < base_share(0.5) < base_share(0.95)


def test_max_tokens_stops_with_length(tiny_pair):
    result = tiny_pair.generate(PROMPT, router="aligned", seed=1, max_tokens=5)
    assert result.finish_reason in ("length", "eog")
    if result.finish_reason == "length":
        assert result.stats.tokens == 5
    else:
        assert result.stats.tokens < 5
    exact = tiny_pair.stream(PROMPT, router="aligned", seed=1, max_tokens=5, ignore_end=True)
    assert exact.run().stats.tokens == 5


def test_a_stop_string_ends_the_answer_and_is_not_included(tiny_pair):
    full = tiny_pair.generate(PROMPT, seed=21, max_tokens=40, temperature=0)
    words = full.text.split()
    stop = words[len(words) // 2]
    cut = tiny_pair.generate(PROMPT, seed=21, max_tokens=40, temperature=0, stop=(stop,))
    assert cut.finish_reason == "stop"
    assert cut.text == full.text[: full.text.index(stop)]


def test_raw_mode_feeds_the_prompt_unchanged(tiny_pair):
    raw = tiny_pair.generate(PROMPT, raw=True, router="aligned", temperature=0, max_tokens=6)
    chat = tiny_pair.generate(PROMPT, router="aligned", temperature=0, max_tokens=6)
    assert raw.stats.prompt_tokens["aligned"] < chat.stats.prompt_tokens["aligned"]
    assert raw.stats.prompt_tokens["base"] == raw.stats.prompt_tokens["aligned"]


def test_multi_turn_messages_and_system_prompt(tiny_pair):
    messages = [
        {"role": "user", "content": "The sea"},
        {"role": "assistant", "content": "is blue."},
        {"role": "user", "content": "The sky"},
    ]
    one = tiny_pair.generate(messages, seed=2, max_tokens=8)
    with_system = tiny_pair.generate(messages, system="Be happy.", seed=2, max_tokens=8)
    assert with_system.stats.prompt_tokens["aligned"] > one.stats.prompt_tokens["aligned"]
    assert (
        one.stats.prompt_tokens["aligned"]
        > tiny_pair.generate("The sky", max_tokens=1).stats.prompt_tokens["aligned"]
    )


def test_cancel_keeps_what_was_produced(tiny_pair):
    generation = tiny_pair.stream(PROMPT, seed=4, max_tokens=200)
    seen = []
    for event in generation:
        seen.append(event)
        if len(seen) == 5:
            generation.cancel()
    assert generation.result.finish_reason == "cancelled"
    assert [t.id for t in generation.result.tokens] == [t.id for t in seen]
    assert len(seen) >= 5


def test_breaking_out_of_a_stream_finishes_it(tiny_pair):
    generation = tiny_pair.stream(PROMPT, seed=4, max_tokens=200)
    events = iter(generation)
    first = next(events)
    events.close()
    assert generation.result.tokens[0] == first
    # the pair is free again
    assert tiny_pair.generate(PROMPT, seed=4, max_tokens=3).stats.tokens > 0


def test_the_context_limit_stops_cleanly(tiny):
    with Pair.load(base=tiny.base, aligned=tiny.aligned, n_ctx=256) as pair:
        n_ctx = pair.loaded.streams[BASE].n_ctx  # llama.cpp may round the size up
        result = pair.generate(PROMPT, router="random", seed=1, max_tokens=5000)
    assert result.finish_reason == "context"
    # every slot is used; the last token is emitted without being read back
    assert result.stats.tokens + result.stats.prompt_tokens[BASE] == n_ctx + 1


@pytest.mark.parametrize("speculative", ["off", "on"])
def test_side_by_side_and_one_after_the_other_give_the_same_answer(tiny, speculative):
    from baco_local.decoding import thread_plan

    answers = []
    for plan in thread_plan.PLANS:
        with Pair.load(base=tiny.base, aligned=tiny.aligned, n_ctx=512, n_threads=2) as pair:
            pair.scheduler.planner.choose = lambda kind, plan=plan: plan
            answers.append(
                [
                    [
                        (t.id, t.source)
                        for t in pair.generate(
                            PROMPT, router=r, seed=9, max_tokens=40, speculative=speculative
                        ).tokens
                    ]
                    for r in ("p-punc", "nudging", "random")
                ]
            )
    assert answers[0] == answers[1]
    assert all(len(tokens) == 40 for tokens in answers[0])


def test_reusing_the_prompt_cache_does_not_change_answers(tiny):
    with Pair.load(base=tiny.base, aligned=tiny.aligned, n_ctx=512) as pair:
        cold = pair.generate(PROMPT, seed=5, max_tokens=20)
        pair.generate("A different prompt entirely", seed=1, max_tokens=20)
        warm = pair.generate(PROMPT, seed=5, max_tokens=20)
    with Pair.load(base=tiny.base, aligned=tiny.aligned, n_ctx=512) as fresh:
        again = fresh.generate(PROMPT, seed=5, max_tokens=20)
    assert (
        [t.id for t in cold.tokens] == [t.id for t in warm.tokens] == [t.id for t in again.tokens]
    )


def test_brainstorm_draws_n_answers_with_consecutive_seeds(tiny_pair):
    answers = tiny_pair.brainstorm(PROMPT, n=3, seed=100, max_tokens=16)
    assert [a.settings.seed for a in answers] == [100, 101, 102]
    assert len({a.text for a in answers}) > 1


def test_in_context_partner_shares_the_weights(tiny):
    with Pair.load(base=tiny.base) as pair:  # aligned defaults to in-context
        assert pair.loaded.shared_weights
        assert pair.label.endswith("(base + in-context aligned)")
        result = pair.generate(PROMPT, seed=1, max_tokens=12)
    assert result.pair == pair.label
    assert result.stats.prompt_tokens["aligned"] > result.stats.prompt_tokens["base"]


def test_same_file_twice_loads_the_weights_once(tiny):
    with Pair.load(base=tiny.aligned, aligned=tiny.aligned) as pair:
        assert pair.loaded.shared_weights
        assert pair.generate(PROMPT, seed=1, max_tokens=4).stats.tokens > 0


def test_a_vocabulary_missing_real_words_is_not_padding(tiny):
    # the small vocabulary lacks ordinary words: not padding, so the pair is one of two
    # vocabularies, which collaborates word by word and says so
    with Pair.load(base=tiny.base, aligned=tiny.small_vocab) as pair:
        assert pair.loaded.word_level
        assert pair.label.endswith("(cross-tokenizer)")


def test_cancel_while_a_long_prompt_is_read_stops_between_chunks(tiny, monkeypatch):
    from baco_local.backend.context import Context

    with Pair.load(base=tiny.base, n_ctx=2048, n_batch=32, prompt_cache=False) as pair:
        generation = pair.stream(PROMPT, seed=1, max_tokens=50)
        decodes = []
        original = Context.decode

        def decode_then_cancel(context, rows):
            decodes.append(len(rows))
            original(context, rows)
            generation.cancel()  # the user presses Esc during the first chunk

        monkeypatch.setattr(Context, "decode", decode_then_cancel)
        assert list(generation) == []
        monkeypatch.undo()
        assert generation.result.finish_reason == "cancelled"
        assert len(decodes) <= 2  # at most one chunk per stream, not the whole prompt
        # the streams stay consistent: the next answer is the one a fresh pair gives
        again = pair.generate(PROMPT, seed=1, max_tokens=8)
    with Pair.load(base=tiny.base, n_ctx=2048, n_batch=32, prompt_cache=False) as fresh:
        expected = fresh.generate(PROMPT, seed=1, max_tokens=8)
    assert [t.id for t in again.tokens] == [t.id for t in expected.tokens]


def test_more_logits_rows_than_a_context_holds_is_an_error_not_an_abort(tiny):
    # llama.cpp aborts the whole process on such a decode (GGML_ASSERT): the backend
    # refuses it first, and the context stays usable.
    from baco_local.backend.context import Context, Row

    with Pair.load(base=tiny.base, n_ctx=256, prompt_cache=False) as pair:
        context = Context(pair.loaded.base_model, n_ctx=64, n_batch=8, n_threads=1, n_outputs=2)
        try:
            rows = [Row(token, pos, 0, True) for pos, token in enumerate((5, 6, 7))]
            with pytest.raises(ValueError, match="3 logits rows do not fit a decode of 2"):
                context.decode(rows)
            context.decode(rows[:2])
            assert context.output_rows().shape[0] == 2
        finally:
            context.close()


def test_lead_lets_the_aligned_model_open_the_answer(tiny_pair):
    result = tiny_pair.generate(PROMPT, router="base", seed=2, max_tokens=12, lead=4)
    assert {t.source for t in result.tokens} == {BASE}  # the base-only baseline stays so
    result = tiny_pair.generate(PROMPT, router="random", gamma=1.0, seed=2, max_tokens=12, lead=4)
    sources = [t.source for t in result.tokens]
    assert sources[:4] == [ALIGNED] * 4 and BASE in sources[4:]


def test_a_closed_pair_refuses_work_instead_of_crashing(tiny):
    from baco_local.errors import BacoError

    pair = Pair.load(base=tiny.base, aligned=tiny.aligned, n_ctx=512)
    pair.close()
    pair.close()  # idempotent
    with pytest.raises(BacoError, match="closed"):
        pair.generate(PROMPT, max_tokens=2)


def test_a_second_generation_in_the_same_thread_joins_the_first(tiny_pair):
    # An answer started while another is being read joins it in the batch: both end,
    # each the answer it would have been alone (the tiny models are exact in a batch).
    solo_outer = tiny_pair.generate(PROMPT, seed=1, max_tokens=20, ignore_end=True)
    solo_inner = tiny_pair.generate(PROMPT, seed=2, max_tokens=6, ignore_end=True)
    outer_stream = tiny_pair.stream(PROMPT, seed=1, max_tokens=20, ignore_end=True)
    outer = iter(outer_stream)
    first = next(outer)
    inner = tiny_pair.generate(PROMPT, seed=2, max_tokens=6, ignore_end=True)
    rest = list(outer)
    assert [first.id] + [e.id for e in rest] == [t.id for t in solo_outer.tokens]
    assert [t.id for t in inner.tokens] == [t.id for t in solo_inner.tokens]
    assert outer_stream.result.text == solo_outer.text


def test_brainstorm_needs_at_least_one_answer(tiny_pair):
    from baco_local.errors import SettingsError

    with pytest.raises(SettingsError):
        tiny_pair.brainstorm(PROMPT, n=0)


def test_consecutive_user_messages_are_merged_for_the_templates(tiny_pair):
    twice = [{"role": "user", "content": "The sea"}, {"role": "user", "content": "The sky"}]
    once = [{"role": "user", "content": "The sea\n\nThe sky"}]
    a = tiny_pair.generate(twice, seed=4, max_tokens=6)
    b = tiny_pair.generate(once, seed=4, max_tokens=6)
    assert [t.id for t in a.tokens] == [t.id for t in b.tokens]


def test_ensemble_with_no_base_weight_is_the_aligned_model_penalty_included(tiny_pair):
    kw = dict(temperature=0, max_tokens=24, repeat_penalty=1.3, seed=1)
    aligned = tiny_pair.generate(PROMPT, router="aligned", **kw)
    mixed = tiny_pair.generate(PROMPT, router="ensemble", gamma=0.0, **kw)
    assert [t.id for t in mixed.tokens] == [t.id for t in aligned.tokens]


def test_aligned_format_does_not_apply_to_the_in_context_partner(tiny):
    from baco_local.errors import SettingsError

    with pytest.raises(SettingsError, match="does not apply"):
        Pair.load(base=tiny.base, aligned="in-context", aligned_format="chatml")


def test_a_long_chat_drops_its_oldest_turns_and_goes_on(tiny):
    from baco_local.pairs.conversation_fit import fit_conversation
    from baco_local.pairs.prompt_formats import Message

    with Pair.load(base=tiny.base, aligned=tiny.aligned, n_ctx=256, n_threads=2) as pair:
        messages = [{"role": "system", "content": "Be brief."}]
        noted = []
        for turn in range(40):
            messages.append({"role": "user", "content": f"Tell me about the sea, part {turn}."})
            result = pair.generate(messages, seed=turn, max_tokens=24)
            assert result.finish_reason in ("length", "eog", "stop")  # every turn answers
            noted += [n for n in result.notes if "no longer fits" in n]
            messages.append({"role": "assistant", "content": result.text or "..."})
        assert noted  # the result says that turns were left out of the prompt
        assert len(messages) == 81  # the caller's conversation is untouched

    # the system prompt and the last request always stay; answers go with their questions
    convo = tuple(
        Message(r, c)
        for r, c in [("system", "S"), ("user", "a"), ("assistant", "A"), ("user", "b")]
    )
    kept, dropped = fit_conversation(convo, lambda c: len(c) <= 2)
    assert [m.content for m in kept] == ["S", "b"] and dropped == 2

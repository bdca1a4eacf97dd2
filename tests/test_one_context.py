"""Both roles on one model share one llama.cpp context: a step that needs both models
decodes their tokens in one llama_decode, and answers stay exact on the tiny models."""

from __future__ import annotations

import dataclasses

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


@pytest.mark.parametrize("mode", ["off", "on"])
def test_requests_joining_mid_run_in_one_context_change_nothing(tiny, mode):
    """Newcomers' prompts are read (a few tokens per decode) while other answers run: a
    decode for one role's prompt overwrites the other role's rows too, and every
    answer must still be the one it would have been alone (the tiny models are exact
    in any company)."""
    from baco_local import Message, Request

    with Pair.load(base=tiny.base, n_ctx=4096, n_batch=8, n_threads=2) as pair:
        assert pair.loaded.one_context
        settings = pair.default_settings.with_changes(
            speculative=mode, max_tokens=30, lead=0, router="p-punc"
        )

        def request(i: int, text: str) -> Request:
            changed = settings.with_changes(seed=i)
            return Request(f"r{i}", (Message("user", text),), changed, n=2, ignore_end=True)

        # Long prompts, and three newcomers at once: the base model's prompts take the
        # decodes' budget first, so they are read before the aligned model's, whose last
        # decodes leave the base view without a prompt to read while answers run.
        texts = [f"Tell me about the sea{', and the sky' * (3 * i)}, part {i}" for i in range(5)]
        alone = {i: pair.submit(request(i, t)).run() for i, t in enumerate(texts)}
        handles = {0: pair.submit(request(0, texts[0]))}
        events = iter(handles[0])
        for _ in range(3):
            next(events)
        for i in (1, 2, 3):
            handles[i] = pair.submit(request(i, texts[i]))
        for _ in range(6):
            next(events)
        handles[4] = pair.submit(request(4, texts[4]))
        for _ in events:
            pass
        for i, handle in handles.items():
            got = handle.run()
            assert tokens_and_sources(got) == tokens_and_sources(alone[i]), i


def test_the_reference_loop_matches_the_fast_loop_in_one_context(tiny):
    """The reference loop reads each model's logits after the other model's decode: in
    a shared context it must keep its own copy."""
    from baco_local.decoding.reference import reference_tokens
    from baco_local.pairs.prompt_formats import to_messages

    with Pair.load(base=tiny.base, n_ctx=2048) as pair:
        assert pair.loaded.one_context
        for router, seed in (("p-punc", 1), ("nudging", 2), ("ensemble", 3)):
            settings = pair.default_settings.with_changes(
                router=router, seed=seed, max_tokens=32, speculative="off"
            )
            fast = pair.stream("The cat", settings, ignore_end=True).run()
            ref = reference_tokens(pair.loaded, to_messages("The cat"), settings, pair.roles)
            assert [(t.id, t.source) for t in fast.tokens] == ref, router


@pytest.mark.parametrize("router", ["p-punc", "nudging", "base"])
def test_long_speculative_runs_in_one_context_equal_the_plain_loop(tiny, monkeypatch, router):
    """Runs of several drafts decode the aligned model alone (overwriting the base's
    rows in the shared context) and then score the run with the base: greedy answers
    are still the plain loop's, token for token."""
    from baco_local.decoding import batch_loop
    from baco_local.decoding.draft_plan import DraftCosts

    cheap = DraftCosts(1.0, tuple(1 + 0.05 * k for k in range(8)))  # runs grow long
    monkeypatch.setattr(batch_loop, "draft_costs", lambda pair, threads: cheap)
    with Pair.load(base=tiny.base, n_ctx=4096, n_threads=2) as pair:
        assert pair.loaded.one_context
        pair.generate("warm up", speculative="on", max_tokens=2)  # the planner takes its costs
        stats = pair.loop.context.drafts.stats
        for n in (1, 3):
            kw = dict(router=router, temperature=0, max_tokens=40, seed=3, lead=0)
            off = pair.brainstorm("Tell me a story about the sea", n=n, speculative="off", **kw)
            before = dataclasses.replace(stats)
            on = pair.brainstorm("Tell me a story about the sea", n=n, speculative="on", **kw)
            assert tokens_and_sources(on) == tokens_and_sources(off), n
            if n == 1:  # alone, some runs were longer than one draft (in a batch, never)
                made = stats.minus(before)
                assert made.drafted > made.runs


def test_served_clients_share_one_context_and_one_leaving_disturbs_nothing(tiny, tmp_path):
    """`baco serve` on an in-context pair: answers streaming together in one context
    are each the answer it is alone, and a client that disconnects leaves the other's
    stream intact."""
    import threading

    import openai
    from serve_process import start_server, stop_server, streamed_text

    hello = [{"role": "user", "content": "Tell me about the cat."}]
    args = ["--base", str(tiny.base), "--ctx", "8192", "--parallel", "4"]
    server = start_server(args, tmp_path / "serve")
    try:
        client = openai.OpenAI(base_url=server.url, api_key="-", max_retries=0, timeout=120)
        kw = dict(model="x", messages=hello, max_tokens=40, seed=11, extra_body={"lead": 0})
        solo = client.chat.completions.create(**kw).choices[0].message.content
        long = dict(max_tokens=3000, seed=3, extra_body={"lead": 0, "ignore_eos": True})
        leaver = client.chat.completions.create(model="x", messages=hello, stream=True, **long)
        leaving = iter(leaver)
        next(leaving)
        texts, started = [], threading.Event()

        def steady() -> None:
            texts.append(streamed_text(client, started, **kw))

        thread = threading.Thread(target=steady)
        thread.start()
        assert started.wait(timeout=120)
        for _ in range(5):
            next(leaving)  # both stream at once
        leaver.close()  # the client disconnects mid-answer
        thread.join(timeout=120)
        assert not thread.is_alive()
        assert texts == [solo]
    finally:
        assert stop_server(server) == 0, server.log()

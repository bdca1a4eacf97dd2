"""Several answers to one prompt, decoded together (the batched loop, token rule)."""

from __future__ import annotations

import pytest

from baco_local import Pair
from baco_local.core.routers import ALIGNED, BASE, ROUTERS

PROMPT = "Tell me a story about the sea"


@pytest.mark.parametrize("router", sorted(ROUTERS))
def test_every_router_runs_batched(tiny_pair, router):
    results = tiny_pair.brainstorm(PROMPT, n=3, router=router, seed=4, max_tokens=12)
    assert len(results) == 3
    for result in results:
        assert result.stats.tokens > 0
        assert {t.source for t in result.tokens} <= {BASE, ALIGNED}
        if router == "base":
            assert result.stats.base_fraction == 1.0
        if router == "aligned":
            assert result.stats.base_fraction == 0.0


def test_both_models_hold_the_same_tokens_of_each_answer(tiny_pair):
    stream = tiny_pair.stream_answers(PROMPT, 3, seed=8, max_tokens=20)
    results = stream.run()
    for history, result in zip(stream.histories, results, strict=True):
        assert history[BASE] == history[ALIGNED]
        # every token but the last was read back (the last is never needed: the answer
        # ends at max_tokens)
        assert result.finish_reason == "length"
        assert history[BASE] == [t.id for t in result.tokens][:-1]


def test_each_answer_is_routed_on_its_own_signals(tiny_pair):
    gamma = 0.4
    for result in tiny_pair.brainstorm(PROMPT, n=4, router="p", gamma=gamma, seed=2, max_tokens=30):
        routed = [t for t in result.tokens if t.decision is not None]
        assert routed
        for token in routed:
            assert token.decision == (BASE if token.top1_prob < gamma else ALIGNED)


def test_answers_are_tagged_with_their_index_and_stream_side_by_side(tiny_pair):
    order = [e.answer for e in tiny_pair.stream_answers(PROMPT, 3, seed=1, max_tokens=10)]
    assert set(order) == {0, 1, 2}
    # interleaved as they are decoded together, not one answer after the other
    assert order != sorted(order)


def test_a_finished_answer_leaves_while_the_others_go_on(tiny_pair):
    plain = tiny_pair.brainstorm(PROMPT, n=3, seed=21, max_tokens=30)
    first_words = plain[0].text.split()
    stop = next(w for w in first_words[2:] if all(w not in r.text for r in plain[1:]))
    results = tiny_pair.brainstorm(PROMPT, n=3, seed=21, max_tokens=30, stop=[stop])
    assert results[0].finish_reason == "stop"
    assert [r.finish_reason for r in results[1:]] == ["length", "length"]
    assert [r.text for r in results[1:]] == [r.text for r in plain[1:]]


def test_more_answers_than_fit_are_made_in_groups(tiny):
    with Pair.load(base=tiny.base, aligned=tiny.aligned, n_ctx=512, n_parallel=2) as pair:
        results = pair.brainstorm(PROMPT, n=5, seed=30, max_tokens=8)
        assert [r.settings.seed for r in results] == [30, 31, 32, 33, 34]
        assert all(r.finish_reason == "length" for r in results)
        events = list(pair.stream_answers(PROMPT, 5, seed=30, max_tokens=8))
        assert {e.answer for e in events} == {0, 1, 2, 3, 4}


def test_one_answer_through_stream_answers_is_the_single_answer_loop(tiny_pair):
    alone = tiny_pair.generate(PROMPT, seed=9, max_tokens=16)
    (only,) = tiny_pair.brainstorm(PROMPT, n=1, seed=9, max_tokens=16)
    assert [t.id for t in only.tokens] == [t.id for t in alone.tokens]


def test_the_ensemble_mixes_per_answer(tiny_pair):
    kw = dict(n=3, seed=6, max_tokens=12, lead=0, speculative="off")
    results = tiny_pair.brainstorm(PROMPT, router="ensemble", gamma=0.0, **kw)
    aligned = tiny_pair.brainstorm(PROMPT, router="aligned", **kw)
    # no base weight: the mixture is the aligned model, penalty included (no lead: the
    # lead's owner would draw a candidate first, which shifts the draws)
    assert [r.text for r in results] == [r.text for r in aligned]


def test_requests_joining_speculative_answers_mid_run_change_nothing(tiny_pair):
    # New requests arrive while speculative answers have runs scored and not yet read;
    # reading a newcomer's prompt must not lose those rows, and every answer is the one
    # it would have been alone (the tiny models are exact in a batch).
    from baco_local import Message, Request

    settings = tiny_pair.default_settings.with_changes(
        speculative="on", max_tokens=40, lead=0, router="p-punc"
    )

    def request(i: int, text: str) -> Request:
        changed = settings.with_changes(seed=i)
        return Request(f"r{i}", (Message("user", text),), changed, n=2, ignore_end=True)

    texts = [f"Tell me about the sea, part {i}" for i in range(5)]
    alone = {i: tiny_pair.submit(request(i, t)).run() for i, t in enumerate(texts)}
    handles = {0: tiny_pair.submit(request(0, texts[0]))}
    events = iter(handles[0])
    for i in range(1, 5):  # each newcomer joins a few events later
        for _ in range(3 + 2 * i):
            next(events)
        handles[i] = tiny_pair.submit(request(i, texts[i]))
    for _ in events:
        pass
    for i, handle in handles.items():
        got = handle.run()
        assert [r.text for r in got] == [r.text for r in alone[i]], i


@pytest.mark.parametrize("layout", ["one model", "two models"])
def test_a_small_prompt_batch_still_decodes_a_step_of_many_answers(tiny, layout, tmp_path):
    """LoadSettings.n_batch is the prompt chunk; a decode must still hold a row per
    answer (llama.cpp aborts the process past its output rows), so it runs in a child."""
    import subprocess
    import sys

    aligned = "in-context" if layout == "one model" else str(tiny.aligned)
    script = (
        "from baco_local import Pair\n"
        f"with Pair.load(base={str(tiny.base)!r}, aligned={aligned!r}, n_ctx=4096,"
        " n_batch=2) as pair:\n"
        "    for mode in ('off', 'on'):\n"
        "        answers = pair.brainstorm('The cat', n=8, max_tokens=8, seed=1,"
        " speculative=mode)\n"
        "        print(sum(len(a.tokens) for a in answers))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert [int(line) > 8 for line in done.stdout.split()] == [True, True]


def test_a_token_reaches_its_caller_before_the_models_read_it(tiny_pair):
    # A step ends once the tokens drawn are delivered: the decode that reads them back is
    # the next step's first work, so a streamed token is not held back by one decode.
    views = tiny_pair.loop.context.views
    unread = []
    for event in tiny_pair.stream(PROMPT, seed=3, max_tokens=12, router="p-punc"):
        for role, view in views.items():
            if event.index < 11:  # the last token is never read: the answer is over
                (seq,) = view.live()
                unread.append((role, event.index, view.pending_count(seq)))
    assert len(unread) == 2 * 11
    assert all(count == 1 for _, _, count in unread), unread


@pytest.mark.parametrize("layout", ["two models", "one model", "two vocabularies"])
def test_running_answers_keep_streaming_while_a_long_prompt_is_read(tiny, layout):
    # A newcomer's prompt is read a chunk per step (n_batch tokens); the answers already
    # running must go on writing in those steps, not wait until the prompt is read.
    from baco_local import Message, Request

    aligned = {
        "two models": str(tiny.aligned),
        "one model": "in-context",
        "two vocabularies": str(tiny.other_vocab),
    }[layout]
    with Pair.load(base=tiny.base, aligned=aligned, n_ctx=4096, n_batch=8, n_threads=2) as pair:
        settings = pair.default_settings.with_changes(max_tokens=200, router="p-punc", seed=1)
        runner = pair.submit(Request("a", (Message("user", "The sea"),), settings, ignore_end=True))
        events = iter(runner)
        for _ in range(3):
            next(events)
        long_text = "Tell me about the sea, and the sky, and the land" * 6
        newcomer = pair.submit(Request("b", (Message("user", long_text),), settings, n=1))
        views = pair.loop.context.views
        chunks = -(-len(newcomer.prompts[BASE].tokens) // 8)  # steps its prompt takes at least
        assert chunks >= 20

        def reading() -> bool:
            return newcomer.waiting > 0 or any(
                view.reading(seq) for view in views.values() for seq in view.live()
            )

        written_meanwhile = 0
        while reading():
            next(events)
            written_meanwhile += 1
        # a step reads a chunk of each model's prompt, and the runner writes in each
        assert written_meanwhile >= chunks // 2, (written_meanwhile, chunks)
        for _ in events:
            pass
        assert runner.run()[0].finish_reason == "length"
        assert newcomer.run()[0].tokens


def test_a_request_takes_a_prompt_as_generate_does_and_ids_must_differ(tiny_pair):
    from baco_local import Message, Request
    from baco_local.errors import SettingsError

    settings = tiny_pair.default_settings.with_changes(seed=3, max_tokens=6)
    as_text = Request("t", "The sea", settings)
    as_dicts = Request("d", [{"role": "user", "content": "The sea"}], settings)
    assert as_text.messages == as_dicts.messages == (Message("user", "The sea"),)
    with pytest.raises(SettingsError, match="no seed"):
        Request("s", "The sea", settings.with_changes(seed=None))
    finished = tiny_pair.answer_all([as_text, as_dicts])
    texts = {item.request_id: item.result.text for item in finished}
    assert texts["t"] == texts["d"] == tiny_pair.generate("The sea", settings).text
    with pytest.raises(SettingsError, match="Two requests have the id 't'"):
        list(tiny_pair.answer_all([as_text, as_text]))
    skipped = []
    again = tiny_pair.answer_all([as_text, as_text], on_error=lambda r, e: skipped.append(r.id))
    assert [item.request_id for item in again] == ["t"] and skipped == ["t"]

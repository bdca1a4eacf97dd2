"""What every loop promises, checked on each of them through the real llama.cpp:
- one answer on a pair with one vocabulary (the single-answer token loop);
- several answers on such a pair (the batched loop, token rule);
- one and several answers on a pair of two vocabularies (the batched loop, word rule).
Seeds replay, stop strings, max tokens, the context and cancelling end answers cleanly."""

from __future__ import annotations

import threading

import pytest

from baco_local import Pair

PROMPT = "Tell me a story about the sea"
LOOPS = ["token-1", "token-3", "word-1", "word-3"]


@pytest.fixture(scope="module")
def word_pair(tiny):
    pair = Pair.load(base=tiny.base, aligned=tiny.small_vocab, n_ctx=1024, n_threads=2)
    yield pair
    pair.close()


@pytest.fixture
def loop(request, tiny_pair, word_pair):
    kind, n = request.param.split("-")
    return (tiny_pair if kind == "token" else word_pair), int(n)


def answers(pair, n, **kw):
    if n == 1:
        return [pair.generate(PROMPT, **kw)]
    return pair.brainstorm(PROMPT, n=n, **kw)


@pytest.mark.parametrize("loop", LOOPS, indirect=True)
def test_a_seed_replays_exactly(loop):
    pair, n = loop
    first = answers(pair, n, seed=11, max_tokens=24)
    again = answers(pair, n, seed=11, max_tokens=24)
    assert [[t.id for t in a.tokens] for a in first] == [[t.id for t in a.tokens] for a in again]
    assert [a.settings.seed for a in first] == list(range(11, 11 + n))
    other = answers(pair, n, seed=12, max_tokens=24)
    assert [a.text for a in other] != [a.text for a in first]


@pytest.mark.parametrize("loop", LOOPS, indirect=True)
def test_max_tokens_ends_with_length(loop):
    pair, n = loop
    for result in answers(pair, n, seed=3, max_tokens=10):
        assert result.finish_reason == "length"
        assert 0 < result.stats.tokens <= 2 * 10


@pytest.mark.parametrize("loop", LOOPS, indirect=True)
def test_a_stop_string_ends_the_answer_and_is_cut_out(loop):
    pair, n = loop
    plain = answers(pair, n, seed=5, max_tokens=40)[0].text
    words = plain.split()
    stop = words[len(words) // 2]
    stopped = answers(pair, n, seed=5, max_tokens=40, stop=[stop])[0]
    assert stopped.finish_reason == "stop"
    assert stop not in stopped.text
    assert plain.startswith(stopped.text)


@pytest.mark.parametrize("loop", LOOPS, indirect=True)
def test_cancel_keeps_what_was_produced(loop):
    pair, n = loop
    stream = (
        pair.stream(PROMPT, seed=2, max_tokens=200)
        if n == 1
        else pair.stream_answers(PROMPT, n, seed=2, max_tokens=200)
    )
    seen = []
    for event in stream:
        seen.append(event)
        if len(seen) == 6:
            threading.Thread(target=stream.cancel).start()  # from another thread
    results = [stream.result] if n == 1 else stream.results
    assert all(r.finish_reason == "cancelled" for r in results)
    assert sum(r.stats.tokens for r in results) == len(seen)
    for r in results:
        assert r.text == "".join(e.text for e in seen if e.answer == results.index(r))


@pytest.mark.parametrize("kind", ["token", "word"])
def test_a_full_context_ends_answers_cleanly(tiny, kind):
    aligned = tiny.aligned if kind == "token" else tiny.small_vocab
    with Pair.load(base=tiny.base, aligned=aligned, n_ctx=256, n_threads=2) as pair:
        for n in (1, 3):
            results = answers(pair, n, seed=1, max_tokens=400)
            assert {r.finish_reason for r in results} <= {"context", "length", "eog", "stop"}
            assert any(r.finish_reason == "context" for r in results)


@pytest.mark.parametrize(("kind", "seed"), [("token", 204), ("word", 20)])
def test_an_end_of_turn_ends_its_answer_and_the_others_go_on(tiny, kind, seed):
    aligned = tiny.aligned if kind == "token" else tiny.small_vocab
    with Pair.load(base=tiny.base, aligned=aligned, n_ctx=1024, n_threads=2) as pair:
        results = pair.brainstorm(PROMPT, n=4, seed=seed, max_tokens=64, temperature=2.5)
    reasons = [r.finish_reason for r in results]
    assert "eog" in reasons and "length" in reasons  # seeds found once, replayed since
    for result in results:
        assert "<|end|>" not in result.text and "</s>" not in result.text
        if result.finish_reason == "eog":
            assert result.stats.tokens < 64

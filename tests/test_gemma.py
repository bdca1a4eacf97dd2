"""The slow tier: the real Gemma 3 270M base weights (demo extra) through the real llama.cpp."""

import pytest

from baco_local import Pair

pytestmark = pytest.mark.gemma


@pytest.fixture(scope="module")
def gemma_pair(gemma_path):
    with Pair.load(base=gemma_path, n_ctx=2048) as pair:  # base + in-context aligned
        yield pair


def test_greedy_aligned_raw_matches_llama_cpp_python(gemma_path):
    import llama_cpp

    prompt = "The three most important inventions in history are"
    llm = llama_cpp.Llama(model_path=str(gemma_path), n_ctx=512, n_batch=256, verbose=False)
    try:
        theirs = []
        for token in llm.generate(llm.tokenize(prompt.encode()), temp=0.0, top_k=1):
            if llama_cpp.llama_vocab_is_eog(llm._model.vocab, token) or len(theirs) == 40:
                break
            theirs.append(token)
    finally:
        llm.close()
    with Pair.load(base=gemma_path, aligned=gemma_path, n_ctx=512) as pair:
        ours = pair.generate(
            prompt, raw=True, router="aligned", temperature=0, max_tokens=40, repeat_penalty=1.0
        )
    assert [t.id for t in ours.tokens] == theirs
    assert len(theirs) == 40


def test_seeded_collaboration_replays_exactly(gemma_pair):
    kw = dict(router="p-punc", gamma=0.5, seed=1234, max_tokens=40, temperature=1.0)
    first = gemma_pair.generate("Suggest a name for a bakery.", **kw)
    again = gemma_pair.generate("Suggest a name for a bakery.", **kw)
    assert first.text and [(t.id, t.source) for t in first.tokens] == [
        (t.id, t.source) for t in again.tokens
    ]


def test_base_fraction_grows_with_gamma_for_router_p(gemma_pair):
    prompts = ["Describe a city at night.", "Invent a new holiday."]

    def base_fraction(gamma):
        results = [
            gemma_pair.generate(p, router="p", gamma=gamma, seed=s, max_tokens=48)
            for p in prompts
            for s in (1, 2)
        ]
        return sum(r.stats.base_tokens for r in results) / sum(r.stats.tokens for r in results)

    fractions = [base_fraction(g) for g in (0.2, 0.5, 0.9)]
    assert fractions[0] < fractions[1] < fractions[2]


def test_in_context_partner_answers_and_is_labelled_honestly(gemma_pair):
    result = gemma_pair.generate(
        "What is the capital of France?", router="aligned", seed=3, temperature=0, max_tokens=24
    )
    assert "(base + in-context aligned)" in result.pair
    assert "Paris" in result.text

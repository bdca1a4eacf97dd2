"""Handing text from one model to another whose tokenizer differs.

On a pair with two vocabularies the answer's text is the one shared state. When one
model has written a word, the other reads it: it tokenizes a small window (its own last
word plus the new text), keeps the longest prefix of what it already holds that the new
tokenization agrees with, and takes the rest. Re-tokenizing the window rather than the
new text alone catches the tokenizers that merge across the join (" walk" + "ed" may be
one token "walked"); when they do, the tokens after the common prefix are rolled back.

Pure Python: the model's tokenizer and token texts come in as callables.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

Tokenize = Callable[[bytes], list[int]]  # text -> ids: no BOS, special tokens as plain text


@dataclass(frozen=True)
class Join:
    """How a model's answer tokens change to take in new text.

    keep: how many of its answer tokens stay; push: the tokens that follow them.
    """

    keep: int
    push: list[int]

    def rolls_back(self, held: int) -> int:
        """How many of `held` answer tokens the join replaces (0: it only appends)."""
        return max(held - self.keep, 0)


def join_text(
    held: Sequence[int],
    piece: Callable[[int], bytes],
    starts_word: Callable[[int], bool],
    new_text: bytes,
    tokenize: Tokenize,
) -> Join:
    """Join `new_text` onto a model's answer tokens `held`.

    held: the model's tokens of the answer so far (ids in its vocabulary).
    piece(id) -> the token's bytes; starts_word(id) -> whether it begins a word.
    new_text: UTF-8 bytes that follow the text of `held`, starting at a character
    boundary (leading whitespace belongs to the word that follows it).
    """
    start = len(held)
    while start > 0:  # the window opens at the start of the last word held
        start -= 1
        if starts_word(held[start]):
            break
    window = b"".join(piece(token) for token in held[start:]) + new_text
    fresh = tokenize(window)
    common = 0
    old = held[start:]
    while common < min(len(old), len(fresh)) and old[common] == fresh[common]:
        common += 1
    return Join(start + common, fresh[common:])


def space_prefix_tokenizer(tokenize: Tokenize, adds_space: bool) -> Tokenize:
    """Wrap a tokenizer that puts a space before its input (SentencePiece's
    add_space_prefix): a window that starts with a space drops it, since the tokenizer
    puts it back; any other window is tokenized as it is."""
    if not adds_space:
        return tokenize

    def without_extra_space(text: bytes) -> list[int]:
        return tokenize(text[1:] if text.startswith(b" ") else text)

    return without_extra_space


def complete_utf8(text: bytes) -> bool:
    """True when `text` does not end inside a UTF-8 character."""
    for back in range(1, min(4, len(text)) + 1):
        byte = text[-back]
        if byte < 0x80:
            return True  # ASCII: complete
        if byte >= 0xC0:  # a lead byte: complete if the character's length fits
            length = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return length == back
    return not text  # only continuation bytes seen (or nothing)

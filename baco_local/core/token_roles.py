"""What role a token plays in text: punctuation/formatting, function word, or content.

The content routers (`punc`, `fc` and their combinations) and the word-boundary rule
read these roles. The word lists live here, in one visible place, so that a user can
see exactly which tokens are forced to the aligned model.

Pure Python and numpy: the piece text of a token comes from a callable that the model
backend provides, and roles are computed lazily, once per token id, because a full
pass over a 262,144-token vocabulary would cost more than a whole generation.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from enum import IntEnum

import numpy as np

# Role of a token, as the content routers see it.


class Role(IntEnum):
    CONTENT = 0  # nouns, verbs, adjectives, numbers, names: where diversity lives
    FUNCTION = 1  # closed-class words: articles, pronouns, prepositions, auxiliaries...
    PUNCT = 2  # punctuation, markdown markers, whitespace, newlines, special tokens


# English function words: the closed classes. Matched on the lower-cased word with
# surrounding whitespace removed, so " The" and "the" both match.
FUNCTION_WORDS: frozenset[str] = frozenset(
    """
    a an the this that these those some any each every no none all both either neither
    i me my mine myself we us our ours ourselves you your yours yourself yourselves
    he him his himself she her hers herself it its itself they them their theirs
    themselves who whom whose which what whatever whoever one ones
    of in on at by for from to with without within into onto upon about above below
    under over between among through during before after since until till against
    across along around behind beyond near off out up down toward towards via per
    than like unlike despite
    and or but nor so yet if then else because although though while whereas unless
    whether as once when whenever where wherever how why
    be am is are was were been being have has had having do does did doing done
    will would shall should can could may might must ought
    not n't 's 're 've 'd 'll 'm
    there here also just only very too quite rather such much many more most few
    less least own same other another even still again ever never always often
    yes
    """.split()
)

# Characters that make up formatting: markdown list/heading/emphasis/code markers and
# quotes. Everything in Unicode's punctuation (P*) and symbol (S*) categories counts too.
FORMATTING_CHARS: frozenset[str] = frozenset("*#_`~>|-+=/\\\"'()[]{}<>.,;:!?…")


def is_punctuation_text(text: str) -> bool:
    """True when `text` is only whitespace, punctuation, symbols or markdown markers."""
    stripped = text.strip()
    return all(ch in FORMATTING_CHARS or unicodedata.category(ch)[0] in "PSZC" for ch in stripped)


def _is_cjk(ch: str) -> bool:
    # Scripts written without spaces: each character counts as the start of a word.
    code = ord(ch)
    return (
        0x3040 <= code <= 0x30FF  # kana
        or 0x3400 <= code <= 0x9FFF  # CJK ideographs
        or 0xAC00 <= code <= 0xD7AF  # hangul syllables
        or 0xF900 <= code <= 0xFAFF
    )


def classify_piece(piece: bytes, special: bool = False) -> tuple[Role, bool]:
    """Return (role, starts_word) for one token's piece.

    piece: the token's bytes as the model writes them (b" The", b"ing", b"\\n").
    special: control tokens (end-of-turn, BOS...) count as formatting and as a boundary.
    A token starts a new word when it begins with whitespace, is punctuation or
    formatting, or begins with a character of a script written without spaces.
    """
    if special or not piece:
        return Role.PUNCT, True
    text = piece.decode("utf-8", errors="replace")
    broken = "\ufffd" in text  # a piece that ends or starts inside a UTF-8 character
    if not broken and is_punctuation_text(text):
        return Role.PUNCT, True
    first = text[0]
    if first in "'\u2019" and text[1:2].isalpha():
        starts_word = False  # contractions ('s, 're) finish the word before them
    else:
        starts_word = first.isspace() or (
            first != "\ufffd" and (_is_cjk(first) or is_punctuation_text(first))
        )
    word = text.strip().lower().replace("\u2019", "'")
    role = Role.FUNCTION if word in FUNCTION_WORDS else Role.CONTENT
    return role, starts_word


class TokenRoles:
    """Lazy per-token table of roles and word starts for one vocabulary.

    piece_of(token_id) -> bytes gives a token's text; is_special(token_id) -> bool marks
    control tokens. Lookups cost one call the first time a token is seen, then an array read.
    """

    _UNKNOWN = -1

    def __init__(
        self,
        n_vocab: int,
        piece_of: Callable[[int], bytes],
        is_special: Callable[[int], bool] = lambda _id: False,
    ):
        self._piece_of = piece_of
        self._is_special = is_special
        self._role = np.full(n_vocab, self._UNKNOWN, dtype=np.int8)
        self._starts = np.zeros(n_vocab, dtype=np.bool_)

    def _fill(self, token_id: int) -> None:
        role, starts = classify_piece(self._piece_of(token_id), self._is_special(token_id))
        self._role[token_id] = role
        self._starts[token_id] = starts

    def role(self, token_id: int) -> Role:
        if self._role[token_id] == self._UNKNOWN:
            self._fill(token_id)
        return Role(int(self._role[token_id]))

    def starts_word(self, token_id: int) -> bool:
        if self._role[token_id] == self._UNKNOWN:
            self._fill(token_id)
        return bool(self._starts[token_id])

"""Write tiny but real GGUF models for tests that go through the real llama.cpp.

The files written here are genuine llama-architecture GGUF models with a
SentencePiece-style ("llama") tokenizer. They load and decode in llama.cpp like any
downloaded model, but they are small (about 0.6 MB at the default sizes), fast to write (tens of ms)
and fully determined by their arguments (same arguments, byte-identical file).

Vocabulary (``vocab="standard"``), in id order:

* 0 ``<unk>`` (UNKNOWN), 1 ``<s>`` (CONTROL, BOS), 2 ``</s>`` (CONTROL, EOS);
* 3 ``<|user|>``, 4 ``<|assistant|>``, 5 ``<|end|>`` (CONTROL; ``<|end|>`` is also
  stored as the end-of-turn token, so llama.cpp treats it as end-of-generation);
* 6..261: the 256 byte tokens ``<0x00>``..``<0xFF>`` (BYTE). A newline is ``<0x0A>``;
* from 262: NORMAL pieces, see :func:`normal_pieces`: the bare word-start marker
  ``▁``, single letters with and without ``▁``, punctuation, word continuations
  (``s``, ``ing``, ...), 90 whole words with ``▁``, capitalised variants, and last
  the intermediate pieces that the SPM merge needs to build each word.

552 tokens in all (``vocab="small"``: 516).

llama.cpp's SPM tokenizer starts from single characters and repeatedly merges the
adjacent pair with the highest-scoring vocabulary entry. A word therefore becomes one
token only if a chain of merges leads to it; this module adds every left-to-right
prefix of each word (``▁c``, ``▁ca`` for ``▁cat``) and scores a piece by its length,
so that the longest known word at a word start always wins. ``add_space_prefix`` is
off, so ``b" The cat"`` tokenizes to ``▁The ▁cat`` and detokenizes back exactly.

Weights are random normal (``numpy.random.default_rng(seed)``), stored as F32. Seeds
change the weights, never the vocabulary, so two seeds make a "base/aligned" pair that
shares one tokenizer. ``output.weight`` is shaped per token class (see ``_ROW_SCALE``
and ``_LOGIT_BIAS``) so that the model writes mostly words, punctuation and newlines,
sometimes word fragments, rarely a control token (EOS, ``<|end|>``: a 64-token
generation usually runs to its length limit) and practically never a raw byte, so
generated text is valid UTF-8. The logit bias goes through a constant "bias channel"
(dimension 0 of the residual stream), since the llama architecture has no output bias.
``logit_scale`` multiplies the random part of ``output.weight`` and sets how peaked
the next-token distributions are; at the default the top-1 probability of a sampled
64-token generation ranges over about 0.14-0.83 (5th-95th percentile, median 0.35).

``vocab="other"`` has the same size as the standard vocabulary but a different text at
id :data:`OTHER_VOCAB_DIFF_ID`; ``vocab="small"`` drops some words (fewer tokens);
``vocab="merging"`` adds :data:`MERGED_PIECES` (a word and its punctuation as one
token), a tokenizer that merges across the join when text is handed over word by word.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

__all__ = [
    "ASSISTANT_ID",
    "BOS_ID",
    "DEFAULT_LOGIT_SCALE",
    "END_ID",
    "EOS_ID",
    "FIRST_BYTE_ID",
    "FIRST_NORMAL_ID",
    "NEWLINE_ID",
    "OTHER_VOCAB_DIFF_ID",
    "OTHER_VOCAB_DIFF_TEXT",
    "SMALL_VOCAB_DROPPED",
    "TINY_CHAT_TEMPLATE",
    "UNK_ID",
    "USER_ID",
    "VOCABS",
    "build_vocab",
    "normal_pieces",
    "write_tiny_model",
]

SPM_SPACE = "\u2581"  # "▁", SentencePiece's word-start marker

# --- vocabulary -------------------------------------------------------------------

SPECIAL_TOKENS: tuple[tuple[str, gguf.TokenType], ...] = (
    ("<unk>", gguf.TokenType.UNKNOWN),
    ("<s>", gguf.TokenType.CONTROL),
    ("</s>", gguf.TokenType.CONTROL),
    ("<|user|>", gguf.TokenType.CONTROL),
    ("<|assistant|>", gguf.TokenType.CONTROL),
    ("<|end|>", gguf.TokenType.CONTROL),
)
UNK_ID, BOS_ID, EOS_ID, USER_ID, ASSISTANT_ID, END_ID = range(len(SPECIAL_TOKENS))
FIRST_BYTE_ID = len(SPECIAL_TOKENS)
NEWLINE_ID = FIRST_BYTE_ID + 0x0A
FIRST_NORMAL_ID = FIRST_BYTE_ID + 256

# fmt: off
FUNCTION_WORDS = (
    "the", "a", "an", "and", "of", "to", "in", "is", "it", "if", "or", "but", "on", "at", "as",
    "be", "was", "are", "for", "with", "not", "that", "this", "by", "from", "he", "she", "they",
    "we", "you", "i", "my", "his", "her", "their", "there", "then", "so", "no", "all", "when",
)
CONTENT_WORDS = (
    "cat", "dog", "sea", "sky", "red", "blue", "run", "jump", "sing", "happy", "bright", "dark",
    "idea", "name", "story", "river", "stone", "light", "bird", "tree", "moon", "star", "rain",
    "wind", "fire", "song", "dream", "night", "day", "old", "new", "small", "big", "warm",
    "cold", "green", "gold", "home", "road", "walk", "see", "fly", "swim", "read", "write",
    "think", "find", "love", "time",
)
# Removed from the "small" vocabulary, which is otherwise built the same way.
SMALL_VOCAB_DROPPED = (
    "happy", "bright", "story", "river", "stone", "dream", "night", "green", "write", "think",
)
# fmt: on
CAPITALISED_WORDS = ("The", "A", "It", "In", "She", "He", "They", "Once")
_ALL_WORDS = frozenset([*FUNCTION_WORDS, *CONTENT_WORDS, *(w.lower() for w in CAPITALISED_WORDS)])
CONTINUATIONS = ("s", "es", "ing", "ed", "er", "ly", "est", "y", "en", "ness")
PUNCTUATION = (".", ",", "!", "?", ":", ";", "-", "*", "#", "**", "'", '"', "(", ")")
MARKED_PUNCTUATION = ("-", "*", "#")  # also as "▁-", "▁*", "▁#" (list items, headings)
LETTERS = "abcdefghijklmnopqrstuvwxyz"

# Word replaced at OTHER_VOCAB_DIFF_ID in the "other" vocabulary.
_OTHER_REPLACED = SPM_SPACE + "dog"
OTHER_VOCAB_DIFF_TEXT = SPM_SPACE + "dot"

# Added by the "merging" vocabulary: a word and the punctuation after it as one token,
# so that text handed over word by word ("▁cat" then ".") re-tokenizes across the join.
MERGED_PIECES = tuple(
    SPM_SPACE + w + p for w in (*FUNCTION_WORDS, *CONTENT_WORDS) for p in (".", ",", ";", "?", "!")
)

VOCABS = ("standard", "other", "small", "merging")


def _word_pieces(words: list[str]) -> list[str]:
    """Pieces for the listed whole words: "▁word" plus capitalised variants."""
    pieces = [SPM_SPACE + w for w in words]
    return pieces + [SPM_SPACE + w for w in CAPITALISED_WORDS]


def _merge_prefixes(piece: str) -> list[str]:
    """Proper prefixes of `piece` of length >= 2: the merge chain that builds it."""
    return [piece[:n] for n in range(2, len(piece))]


def _unique(items: list[str]) -> list[str]:
    """`items` without repeats, first occurrence kept (a stable, deterministic order)."""
    return list(dict.fromkeys(items))


def normal_pieces(words: list[str] | None = None) -> list[str]:
    """The NORMAL pieces of a vocabulary, in id order (ids from FIRST_NORMAL_ID).

    `words` are the whole words (without the "▁" marker); by default the function
    and content words of the standard vocabulary.
    """
    if words is None:
        words = [*FUNCTION_WORDS, *CONTENT_WORDS]
    listed = (
        [SPM_SPACE]
        + list(LETTERS)
        + [SPM_SPACE + c for c in LETTERS]
        + list(PUNCTUATION)
        + [SPM_SPACE + p for p in MARKED_PUNCTUATION]
        + list(CONTINUATIONS)
        + _word_pieces(words)
    )
    listed = _unique(listed)
    known = set(listed)
    intermediates = sorted(
        {p for piece in listed for p in _merge_prefixes(piece)} - known,
        key=lambda p: (len(p), p),
    )
    return listed + intermediates


def build_vocab(vocab: str = "standard") -> tuple[list[str], list[float], list[int]]:
    """Token texts, scores and types of the named vocabulary (see VOCABS)."""
    if vocab not in VOCABS:
        raise ValueError(f"unknown vocab {vocab!r}; expected one of {VOCABS}")
    words = [*FUNCTION_WORDS, *CONTENT_WORDS]
    if vocab == "small":
        words = [w for w in words if w not in SMALL_VOCAB_DROPPED]
    pieces = normal_pieces(words)
    if vocab == "merging":
        pieces = pieces + list(MERGED_PIECES)
    if vocab == "other":
        pieces[pieces.index(_OTHER_REPLACED)] = OTHER_VOCAB_DIFF_TEXT

    texts = [text for text, _ in SPECIAL_TOKENS]
    types = [int(kind) for _, kind in SPECIAL_TOKENS]
    texts += [f"<0x{b:02X}>" for b in range(256)]
    types += [int(gguf.TokenType.BYTE)] * 256
    texts += pieces
    types += [int(gguf.TokenType.NORMAL)] * len(pieces)
    # SPM merges the highest-scoring pair first: longer pieces win. Specials and
    # bytes are never merge results, so their score does not matter.
    scores = [0.0] * FIRST_NORMAL_ID + [float(len(p)) for p in pieces]
    return texts, scores, types


OTHER_VOCAB_DIFF_ID = FIRST_NORMAL_ID + normal_pieces().index(_OTHER_REPLACED)

# --- chat template ----------------------------------------------------------------

TINY_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }}<|end|>\n"
    "{% elif message['role'] == 'user' %}<|user|>\n{{ message['content'] }}<|end|>\n"
    "{% elif message['role'] == 'assistant' %}"
    "<|assistant|>\n{{ message['content'] }}<|end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
"""A short Jinja2 chat template for the tiny vocabulary.

System text comes first, closed by ``<|end|>``; each user and assistant turn is
``<|user|>``/``<|assistant|>``, a newline, the content and ``<|end|>``. With
``add_generation_prompt`` it ends with an open ``<|assistant|>`` turn.
"""

# --- weights ----------------------------------------------------------------------

# What the model tends to write is set per token class, in output.weight:
#   row scale  multiplies the token's random row: how far its logit swings with context;
#   logit bias is added through the bias channel (below): a fixed prior.
_ROW_SCALE = {
    "punct": 1.1,  # punctuation and newline: a little more frequent
    "word": 1.0,  # whole words and word continuations
    "fragment": 0.5,  # single letters, bare "▁" and the merge intermediates
    "control": 0.35,  # EOS, <|end|>, ...: rare but possible
    "silent": 0.0,  # <unk> and byte tokens other than newline
}
_LOGIT_BIAS = {"punct": 0.0, "word": 0.0, "fragment": 0.0, "control": 0.0, "silent": -12.0}

# Dimension 0 of the residual stream is a constant "bias channel": every token
# embedding holds _BIAS_CHANNEL_VALUE there, no block reads it (its norm weights are
# 0) or writes it (its output rows are 0), so after the final RMS norm it is a positive
# value of about _BIAS_CHANNEL_NORMED, and output.weight[:, 0] acts as a logit bias.
# The normalised value moves a little with the other dimensions' scale: biases are
# approximate.
_BIAS_CHANNEL = 0
_BIAS_CHANNEL_VALUE = 1.0
_BIAS_CHANNEL_NORMED = 0.73  # measured: 0.5 to 1.1, median 0.73 (default sizes)


def _token_class(text: str, kind: int) -> str:
    """The class of one token: "punct", "word", "fragment", "control" or "silent"."""
    if kind == gguf.TokenType.CONTROL:
        return "control"
    if kind != gguf.TokenType.NORMAL:
        return "punct" if text == "<0x0A>" else "silent"
    bare = text.removeprefix(SPM_SPACE)
    if bare in PUNCTUATION:
        return "punct"
    is_word = text.startswith(SPM_SPACE) and bare.lower() in _ALL_WORDS
    if is_word or text in CONTINUATIONS:
        return "word"
    return "fragment"


def _normal(rng: np.random.Generator, shape: tuple[int, ...], std: float) -> np.ndarray:
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(std)


def _layer_tensors(rng: np.random.Generator, n_embd: int, n_ff: int) -> dict[str, np.ndarray]:
    """One transformer block, blind to the bias channel.

    Numpy shapes are (out, in): ggml's order reversed.
    """
    proj = 1.0 / np.sqrt(n_embd)
    norm = np.ones(n_embd, dtype=np.float32)
    norm[_BIAS_CHANNEL] = 0.0
    tensors = {
        "attn_norm.weight": norm,
        "attn_q.weight": _normal(rng, (n_embd, n_embd), proj),
        "attn_k.weight": _normal(rng, (n_embd, n_embd), proj),
        "attn_v.weight": _normal(rng, (n_embd, n_embd), proj),
        "attn_output.weight": _normal(rng, (n_embd, n_embd), proj),
        "ffn_norm.weight": norm,
        "ffn_gate.weight": _normal(rng, (n_ff, n_embd), proj),
        "ffn_up.weight": _normal(rng, (n_ff, n_embd), proj),
        "ffn_down.weight": _normal(rng, (n_embd, n_ff), 1.0 / np.sqrt(n_ff)),
    }
    tensors["attn_output.weight"][_BIAS_CHANNEL, :] = 0.0
    tensors["ffn_down.weight"][_BIAS_CHANNEL, :] = 0.0
    return tensors


def _output_tensor(
    rng: np.random.Generator, texts: list[str], types: list[int], n_embd: int, logit_scale: float
) -> np.ndarray:
    """output.weight: random rows scaled per token class, bias in the bias channel.

    After the final RMS norm the hidden state has norm ~sqrt(n_embd); rows of std
    1/sqrt(n_embd) give logits of std ~1, which logit_scale multiplies.
    """
    classes = [_token_class(text, kind) for text, kind in zip(texts, types)]
    row_scale = np.array([_ROW_SCALE[c] for c in classes], dtype=np.float32)
    bias = np.array([_LOGIT_BIAS[c] for c in classes], dtype=np.float32)
    output = _normal(rng, (len(texts), n_embd), logit_scale / np.sqrt(n_embd))
    output *= row_scale[:, None]
    output[:, _BIAS_CHANNEL] = bias / _BIAS_CHANNEL_NORMED
    return output


def _model_tensors(
    seed: int,
    texts: list[str],
    types: list[int],
    *,
    n_embd: int,
    n_layer: int,
    n_ff: int,
    logit_scale: float,
) -> dict[str, np.ndarray]:
    """All tensors, by GGUF name, drawn in a fixed order from one seeded generator."""
    rng = np.random.default_rng(seed)
    embeddings = _normal(rng, (len(texts), n_embd), 1.0)
    embeddings[:, _BIAS_CHANNEL] = _BIAS_CHANNEL_VALUE
    tensors = {"token_embd.weight": embeddings}
    for layer in range(n_layer):
        for name, value in _layer_tensors(rng, n_embd, n_ff).items():
            tensors[f"blk.{layer}.{name}"] = value
    tensors["output_norm.weight"] = np.ones(n_embd, dtype=np.float32)
    tensors["output.weight"] = _output_tensor(rng, texts, types, n_embd, logit_scale)
    return tensors


# --- writing ----------------------------------------------------------------------

# Measured over 30 sampled 64-token generations (6 seeds, temperature 1): top-1
# probability 5th/50th/95th percentile 0.14/0.35/0.83, entropy 0.95/2.65/3.68 nats.
DEFAULT_LOGIT_SCALE = 3.0


def _add_hparams(
    writer: gguf.GGUFWriter, *, n_embd: int, n_layer: int, n_head: int, n_ff: int, n_ctx: int
) -> None:
    writer.add_context_length(n_ctx)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)


def _add_tokenizer(
    writer: gguf.GGUFWriter,
    texts: list[str],
    scores: list[float],
    types: list[int],
    chat_template: str | None,
) -> None:
    writer.add_tokenizer_model("llama")
    writer.add_token_list(texts)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(BOS_ID)
    writer.add_eos_token_id(EOS_ID)
    writer.add_eot_token_id(END_ID)
    writer.add_unk_token_id(UNK_ID)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_add_space_prefix(False)
    if chat_template is not None:
        writer.add_chat_template(chat_template)


def write_tiny_model(
    path: str | Path,
    *,
    seed: int = 0,
    vocab: str = "standard",
    chat_template: str | None = None,
    n_embd: int = 64,
    n_layer: int = 2,
    n_head: int = 4,
    n_ff: int = 128,
    n_ctx: int = 4096,
    logit_scale: float = DEFAULT_LOGIT_SCALE,
) -> Path:
    """Write a tiny llama-architecture GGUF model to `path` and return the path.

    `seed` picks the random weights (the vocabulary does not depend on it); `vocab`
    is "standard", "other" or "small" (see the module docstring); `chat_template`,
    when given, is stored as ``tokenizer.chat_template`` (e.g. TINY_CHAT_TEMPLATE).
    `logit_scale` scales output.weight: larger means more peaked next-token
    distributions. The same arguments always give a byte-identical file.
    """
    if n_embd % n_head:
        raise ValueError(f"n_embd ({n_embd}) must be a multiple of n_head ({n_head})")
    path = Path(path)
    texts, scores, types = build_vocab(vocab)
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name(f"baco-tiny-{vocab}-seed{seed}")
    _add_hparams(writer, n_embd=n_embd, n_layer=n_layer, n_head=n_head, n_ff=n_ff, n_ctx=n_ctx)
    _add_tokenizer(writer, texts, scores, types, chat_template)
    tensors = _model_tensors(
        seed, texts, types, n_embd=n_embd, n_layer=n_layer, n_ff=n_ff, logit_scale=logit_scale
    )
    for name, value in tensors.items():
        writer.add_tensor(name, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path

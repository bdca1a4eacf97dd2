"""Sentence embeddings through llama.cpp's embedding mode, for semantic metrics.

An `Embedder` opens its own llama.cpp context over a loaded `backend.Model`, with
`embeddings = True` and a pooling type, decodes one text at a time as sequence 0 and
reads the pooled vector with `llama_get_embeddings_seq`. Two kinds of model work:

- a dedicated sentence embedder (all-MiniLM-L6-v2, the default of `baco eval`; bge,
  nomic-embed, e5...): its own pooling and special tokens, from its metadata. For
  MiniLM this gives sentence-transformers' vectors (checked against a numpy forward
  pass in tests/test_eval_minilm.py: same WordPiece tokens, cosine within 1e-5);
- the fallback, any generative GGUF (the pair's aligned model): mean pooling over the
  last hidden states of the text's tokens. Cheaper to have, weaker as a semantic space:
  its vectors share one dominant direction, so callers should centre them (see
  `eval.metrics_semantic.centre`).

A text is tokenized the way the model's tokenizer frames one (BOS for Gemma; [CLS]
... [SEP] for BERT) and its own tokens are cut so that the whole fits `max_tokens`
(256, MiniLM's training length, as sentence-transformers cuts).

Cost, measured with Gemma 3 270M: llama.cpp computes a logits row for every token of
a pooled sequence, so a text of n tokens briefly needs n x n_vocab x 4 bytes (130 MiB
for 128 tokens); `max_tokens` bounds it.
"""

from __future__ import annotations

import os
from contextlib import ExitStack

import numpy as np

from ..backend import Model, decode_thread
from ..errors import ModelFileError

POOLING = {"model": -1, "mean": 1, "cls": 2, "last": 3}  # llama_pooling_type values
SENTENCE_POOLING = {1: "mean", 2: "cls", 3: "last"}  # what a sentence embedder may name


class Embedder:
    """Embeddings of texts from one model. Not thread-safe: one context, one text at a time.

    pooling: "model" (the GGUF's own; mean when it names none), "mean", "cls" or "last".
    max_tokens: the most tokens a text takes, its special tokens included; longer texts
    keep their first tokens.
    """

    def __init__(
        self, model: Model, *, pooling: str = "mean", max_tokens: int = 256, n_threads: int = 1
    ):
        llama = model._llama
        self.model = model
        self._llama = llama
        self._exit = ExitStack()
        self.max_tokens = max_tokens
        self.n_embd = int(llama.llama_model_n_embd(model.handle))
        self.ctx = self._context(POOLING[pooling], n_threads)
        if int(llama.llama_pooling_type(self.ctx)) <= 0:  # the model names no pooling
            llama.llama_free(self.ctx)
            self.ctx = self._context(POOLING["mean"], n_threads)
        self._exit.callback(lambda: llama.llama_free(self.ctx))
        self._batch = llama.llama_batch_init(max_tokens, 0, 1)
        self._exit.callback(llama.llama_batch_free, self._batch)
        self._memory = llama.llama_get_memory(self.ctx)
        self._head, self._tail = special_frame(model)

    @classmethod
    def load(cls, path: str | os.PathLike, **options) -> Embedder:
        """An embedder that owns its model, loaded from a GGUF file (pooling: the file's)."""
        model = Model(path)
        try:
            embedder = cls(model, **{"pooling": "model", **options})
        except BaseException:
            model.close()
            raise
        embedder._exit.callback(model.close)
        return embedder

    def _context(self, pooling_type: int, n_threads: int):
        llama = self._llama
        params = llama.llama_context_default_params()
        params.n_ctx = params.n_batch = params.n_ubatch = self.max_tokens
        params.n_seq_max = 1
        params.embeddings = True
        params.pooling_type = pooling_type
        params.n_threads = params.n_threads_batch = n_threads
        params.no_perf = True
        ctx = llama.llama_init_from_model(self.model.handle, params)
        if not ctx:
            raise ModelFileError(
                f"llama.cpp could not open an embedding context for {self.model.path}.",
                "name another embedding model, or free some memory",
            )
        return ctx

    def embed(self, texts: list[str]) -> np.ndarray:
        """Pooled embeddings, shape (len(texts), n_embd), float32, not normalised.

        An empty text is embedded as its special tokens alone (BOS; [CLS] [SEP]), or as
        a zero row if the model adds none.
        """
        out = np.zeros((len(texts), self.n_embd), dtype=np.float32)
        for row, text in enumerate(texts):
            tokens = self._tokens(text)
            if tokens:
                out[row] = self._embed_tokens(tokens)
        return out

    def _tokens(self, text: str) -> list[int]:
        own = self.model.tokenize(text, add_bos=False, special=False)
        room = max(self.max_tokens - len(self._head) - len(self._tail), 0)
        return [*self._head, *own[:room], *self._tail]

    def _embed_tokens(self, tokens: list[int]) -> np.ndarray:
        llama, batch = self._llama, self._batch
        llama.llama_memory_clear(self._memory, True)  # each text is a fresh sequence 0
        batch.n_tokens = len(tokens)
        for i, token in enumerate(tokens):
            batch.token[i] = token
            batch.pos[i] = i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = True  # pooling reads every token's output
        status = decode_thread.run(llama.llama_decode, self.ctx, batch)
        if status != 0:
            raise RuntimeError(f"llama_decode failed with status {status} while embedding")
        pooled = llama.llama_get_embeddings_seq(self.ctx, 0)
        if not pooled:
            raise RuntimeError("llama.cpp returned no pooled embedding")
        return np.ctypeslib.as_array(pooled, shape=(self.n_embd,)).copy()

    def close(self) -> None:
        self._exit.close()

    def __enter__(self) -> Embedder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def special_frame(model: Model) -> tuple[list[int], list[int]]:
    """The special tokens the model's tokenizer puts before and after a text's own
    tokens when asked to add them: ([BOS], []) for Gemma, ([CLS], [SEP]) for BERT."""
    own = model.tokenize("a", add_bos=False, special=False)
    framed = model.tokenize("a", add_bos=True, special=False)
    for start in range(len(framed) - len(own) + 1):
        if framed[start : start + len(own)] == own:
            return framed[:start], framed[start + len(own) :]
    return [], []  # the framing changed the text's own tokens: add nothing


def sentence_pooling(path: str | os.PathLike) -> str:
    """The pooling a GGUF sentence embedder names ("mean", "cls" or "last").

    Raises ModelFileError for a file that is not one: a generative model, or a
    reranker, names no such pooling, and llama.cpp would not give one vector per text.
    """
    model = Model(path, vocab_only=True)
    try:
        arch = model.metadata("general.architecture") or "?"
        value = model.metadata(f"{arch}.pooling_type")
    finally:
        model.close()
    pooling = SENTENCE_POOLING.get(int(value)) if value and value.isdigit() else None
    if pooling is None:
        said = "names no pooling type" if value is None else f"names pooling type {value}"
        raise ModelFileError(
            f"{path} is not a sentence embedding model: its GGUF ({arch}) {said}, "
            "so llama.cpp would not pool its states into one vector per text.",
            "give an embedding GGUF (the default all-minilm-l6-v2, or `baco models pull "
            "all-minilm-l6-v2`), or --embedding aligned to embed with the pair's aligned "
            "model, mean-pooled",
        )
    return pooling

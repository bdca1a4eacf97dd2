"""Embeddings through llama.cpp's embedding mode, on the tiny model and on Gemma."""

from __future__ import annotations

import numpy as np
import pytest

from baco_local.backend import Model
from baco_local.eval.embedding import Embedder
from baco_local.eval.metrics_semantic import centre, cosine_matrix


@pytest.fixture(scope="module")
def tiny_embedder(tiny):
    embedder = Embedder.load(tiny.aligned, max_tokens=32)
    yield embedder
    embedder.close()


def test_embeddings_have_the_model_width_and_repeat_exactly(tiny_embedder):
    texts = ["the cat sat", "a dog ran far away", "the cat sat"]
    vectors = tiny_embedder.embed(texts)
    assert vectors.shape == (3, tiny_embedder.n_embd) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors[0], vectors[2], rtol=1e-5)
    assert not np.allclose(vectors[0], vectors[1])
    np.testing.assert_allclose(
        tiny_embedder.embed(["a dog ran far away"])[0], vectors[1], rtol=1e-5
    )


def test_long_and_empty_texts(tiny_embedder):
    long_text = " ".join(["cat"] * 200)  # cut to max_tokens
    vectors = tiny_embedder.embed([long_text, ""])
    assert np.all(np.isfinite(vectors))
    assert np.linalg.norm(vectors[0]) > 0 and np.linalg.norm(vectors[1]) > 0  # "" is BOS alone


def test_an_embedder_over_a_shared_model_leaves_it_usable(tiny):
    model = Model(tiny.base)
    try:
        with Embedder(model, max_tokens=16) as embedder:
            assert embedder.embed(["hello"]).shape == (1, embedder.n_embd)
        assert model.tokenize("hello")  # the model outlives its embedder
    finally:
        model.close()


@pytest.mark.gemma
def test_gemma_centred_embeddings_find_the_paraphrase(gemma_path):
    with Embedder.load(gemma_path, pooling="mean", n_threads=2) as embedder:
        reference = embedder.embed(
            ["Tell me a joke.", "Name a bakery.", "Write a story about a fox.", "Plan my day."]
        ).mean(0)
        texts = [
            "Once upon a time there was a dragon who loved tea.",
            "Once upon a time, a dragon was very fond of tea.",
            "Quantum chromodynamics describes the strong force.",
        ]
        similarity = cosine_matrix(centre(embedder.embed(texts), reference))
    assert similarity[0, 1] > similarity[0, 2] and similarity[0, 1] > similarity[1, 2]

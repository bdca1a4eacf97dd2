"""The unit of work: one prompt x one method setting -> k answers, scored and embedded.

`run_unit(unit, resources)` is a plain function of a serialisable `WorkUnit` (plus
per-process `Resources`: the loaded pair, the quality scorer, the embedder) and returns
a JSON-ready record. Nothing else is needed to run it elsewhere: a cluster adapter
ships `unit.to_dict()` and a `ResourceConfig` to a worker, calls `run_unit_in_process`,
and appends the record to the run's JSONL file (`store.RecordStore`).

Answer i of a unit uses seed `unit.seed + i`: every method sees the same seeds.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from ..core.settings import GenerationSettings, LoadSettings
from ..pairs.loading import PairSpec
from .methods import Point
from .quality import QUALITY_VERSION


@dataclass(frozen=True)
class WorkUnit:
    """One prompt, one method setting, k answers. Every field is JSON-friendly."""

    task: str
    prompt_id: str
    prompt: str
    method: str
    point: str
    value: float | None
    settings: dict
    system: str | None
    k: int
    seed: int

    @classmethod
    def make(cls, item, point: Point, k: int, seed: int) -> WorkUnit:
        return cls(
            item.task,
            item.id,
            item.prompt,
            point.method,
            point.label,
            point.value,
            point.settings,
            point.system,
            k,
            seed,
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> WorkUnit:
        return cls(**data)

    def key(self, identity: str) -> str:
        """A stable id of what this unit computes with these resources (for resuming)."""
        text = json.dumps([self.to_dict(), identity, QUALITY_VERSION], sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


@dataclass(frozen=True)
class ResourceConfig:
    """What a worker process loads: the pair, and where embeddings come from.

    embedding: a GGUF path for a dedicated embedding model, or None for the fallback
    (the aligned model, mean-pooled, centred on the built-in prompts).
    judge: a GGUF path for the model that scores quality, or None for the pair's
    aligned model.
    """

    spec: PairSpec
    load: LoadSettings
    embedding: str | None = None
    reference_texts: tuple[str, ...] = field(default_factory=tuple)
    judge: str | None = None

    def identity(self) -> str:
        """What the stored results depend on: model files, formats, embedding model."""
        s = self.spec
        parts = [str(s.base), str(s.aligned), s.base_format, s.aligned_format]
        if self.judge:
            parts.append(f"judge:{self.judge}")
        if self.embedding:
            parts.append(self.embedding)
        else:  # the centring texts shape the stored vectors too
            centring = hashlib.sha256("\n".join(self.reference_texts).encode()).hexdigest()
            parts.append(f"fallback:aligned-mean-centred:{centring[:12]}")
        return json.dumps(parts)


class Resources:
    """Loaded once per process: the pair, a quality scorer and an embedder."""

    def __init__(self, config: ResourceConfig):
        from ..api import Pair
        from ..pairs.loading import LoadedPair
        from .embedding import Embedder
        from .quality import QualityScorer

        self.config = config
        self.scorer = self.embedder = None
        self.pair = Pair(LoadedPair(config.spec, config.load))
        threads = self.pair.loaded.n_threads
        try:
            if config.judge:
                load = config.load
                self.scorer = QualityScorer.for_file(
                    config.judge, n_ctx=load.n_ctx, n_batch=load.n_batch, n_threads=threads
                )
            else:
                self.scorer = QualityScorer.for_pair(self.pair.loaded, n_threads=threads)
            if config.embedding:
                self.embedder = Embedder.load(config.embedding, n_threads=threads)
                self.reference_mean = None
            else:
                model = self.pair.loaded.aligned_model
                self.embedder = Embedder(model, n_threads=threads)
                self.reference_mean = self.embedder.embed(list(config.reference_texts)).mean(0)
        except BaseException:
            self.close()  # whatever was opened, contexts before the models they use
            raise

    def embed(self, texts: list[str]) -> np.ndarray:
        """(k, d) unit vectors; centred on the reference texts for the fallback model."""
        from .metrics_semantic import centre, unit_rows

        vectors = self.embedder.embed(texts)
        if self.reference_mean is None:
            return unit_rows(vectors)
        return centre(vectors, self.reference_mean)

    def close(self) -> None:
        for part in (self.embedder, self.scorer):
            if part is not None:
                part.close()
        self.pair.close()


def run_unit(
    unit: WorkUnit, resources: Resources, on_answer: Callable[[], None] | None = None
) -> dict:
    """Generate unit.k answers (together, in one batch), score each, embed them all;
    return the record."""
    started = time.perf_counter()
    settings = GenerationSettings(**{**unit.settings, "stop": tuple(unit.settings["stop"])})
    batch = resources.pair.stream_answers(
        unit.prompt, unit.k, settings.with_changes(seed=unit.seed), system=unit.system
    )
    answers = []
    for result in batch.run():
        answers.append(_answer_record(result, unit.prompt, resources))
        if on_answer is not None:
            on_answer()
    vectors = resources.embed([a["text"] for a in answers])
    return {
        "key": unit.key(resources.config.identity()),
        "unit": unit.to_dict(),
        "pair": resources.pair.label,
        "answers": answers,
        "embeddings": encode_vectors(vectors),
        "seconds": round(time.perf_counter() - started, 3),
    }


def _answer_record(result, prompt: str, resources: Resources) -> dict:
    scorer = resources.scorer
    return {
        "text": result.text,
        "seed": result.settings.seed,
        "tokens": result.stats.tokens,
        "base_fraction": round(result.stats.base_fraction, 4),
        "finish_reason": result.finish_reason,
        "loglik": _finite(scorer.loglik(prompt, result.text)),
        "judge": _finite(scorer.judge(prompt, result.text)),
    }


def _finite(x: float) -> float | None:
    return None if x != x else round(float(x), 6)  # JSON has no nan


def encode_vectors(vectors: np.ndarray) -> dict:
    """A (k, d) float array as JSON: float16 bytes in base64, and the shape."""
    data = np.ascontiguousarray(vectors, dtype="<f2").tobytes()
    return {"shape": list(vectors.shape), "f16": base64.b64encode(data).decode("ascii")}


def decode_vectors(data: dict) -> np.ndarray:
    """The inverse of encode_vectors, as float64."""
    raw = base64.b64decode(data["f16"])
    return np.frombuffer(raw, dtype="<f2").reshape(data["shape"]).astype(np.float64)


# --- one process's resources, for pools and cluster adapters ------------------------

_PROCESS_RESOURCES: dict[str, Resources] = {}


def process_resources(config: ResourceConfig) -> Resources:
    """This process's Resources for config, loaded on first use."""
    ident = config.identity()
    if ident not in _PROCESS_RESOURCES:
        _PROCESS_RESOURCES[ident] = Resources(config)
    return _PROCESS_RESOURCES[ident]


def run_unit_in_process(unit_data: dict, config: ResourceConfig, on_answer=None) -> dict:
    """run_unit from plain data, reusing this process's loaded models."""
    return run_unit(WorkUnit.from_dict(unit_data), process_resources(config), on_answer)

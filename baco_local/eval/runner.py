"""The unit of work: one prompt x one method setting -> k answers, scored and embedded.

`run_unit(unit, resources)` is a plain function of a serialisable `WorkUnit` (plus
per-worker `Resources`: the loaded pair, the quality scorer, the embedder) and returns
a JSON-ready record. `EVAL_JOB(config)` is the same as an executor job (see
baco_local.executors): plain data in (`ResourceConfig.to_dict()`, `unit.to_dict()`),
events out, so a unit runs here, in another process or on a Ray node alike, and only
the driver appends records to the run's JSONL file (`store.RecordStore`).

Answer i of a unit uses seed `unit.seed + i`: every method sees the same seeds.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace

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
    # How a worker on another machine finds the files by name, where they were named:
    # {"pair": catalog name (None: the default pair), "base_format", "aligned_format"}
    # and {"embedder": catalog name}. Paths (files given as paths) are used as they are.
    names: dict | None = None

    def to_dict(self) -> dict:
        """Plain data (JSON-ready); from_dict gives the same config back."""
        return {
            "spec": {
                **asdict(self.spec),
                "base": str(self.spec.base),
                "aligned": str(self.spec.aligned),
            },
            "load": asdict(self.load),
            "embedding": self.embedding,
            "reference_texts": list(self.reference_texts),
            "judge": self.judge,
            "names": self.names,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ResourceConfig:
        return cls(
            PairSpec(**data["spec"]),
            LoadSettings(**data["load"]),
            data["embedding"],
            tuple(data["reference_texts"]),
            data["judge"],
            data.get("names"),
        )

    def found_here(self) -> ResourceConfig:
        """This config with the named files looked up on this machine (a Ray node may
        keep them elsewhere than the driver, or pull them). identity() is unchanged:
        records name what the driver asked for."""
        names = self.names or {}
        spec, embedding = self.spec, self.embedding
        if "pair" in names:
            from ..models.catalog import resolve_pair_spec

            spec = resolve_pair_spec(
                names["pair"],
                base_format=names.get("base_format"),
                aligned_format=names.get("aligned_format"),
            )
            spec.require_same_models(self.spec.model_files())
        if names.get("embedder") and embedding is not None:
            from ..models.embedders import embedder_file

            embedding = str(embedder_file(names["embedder"]))
        return replace(self, spec=spec, embedding=embedding)

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

    def __init__(self, config: ResourceConfig, found: ResourceConfig | None = None):
        """Load what config names (found: the same, with its files as found on this
        machine; records keep config's identity)."""
        from ..api import Pair
        from ..pairs.loading import LoadedPair
        from .embedding import Embedder
        from .quality import QualityScorer

        self.config = config
        config = found or config
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
    record = None
    for kind, data in unit_events(unit, resources):
        if kind == "answer" and on_answer is not None:
            on_answer()
        record = data
    return record


def unit_events(unit: WorkUnit, resources: Resources) -> Iterator[tuple[str, dict | None]]:
    """run_unit as events: ("answer", None) as each answer ends, then ("done", record)."""
    started = time.perf_counter()
    settings = GenerationSettings(**{**unit.settings, "stop": tuple(unit.settings["stop"])})
    batch = resources.pair.stream_answers(
        unit.prompt, unit.k, settings.with_changes(seed=unit.seed), system=unit.system
    )
    answers = []
    for result in batch.run():
        answers.append(_answer_record(result, unit.prompt, resources))
        yield ("answer", None)
    vectors = resources.embed([a["text"] for a in answers])
    yield (
        "done",
        {
            "key": unit.key(resources.config.identity()),
            "unit": unit.to_dict(),
            "pair": resources.pair.label,
            "answers": answers,
            "embeddings": encode_vectors(vectors),
            "seconds": round(time.perf_counter() - started, 3),
        },
    )


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


# --- the executor job (baco_local.executors): plain data in, events out ----------------


def load_resources(config: dict, placement) -> Resources:
    """A worker's Resources from ResourceConfig.to_dict(); on another machine the named
    files are looked up there, and the placement's threads replace the config's."""
    wanted = ResourceConfig.from_dict(config)
    found = wanted.found_here() if placement.elsewhere else wanted
    if placement.threads is not None:
        found = replace(found, load=replace(found.load, n_threads=placement.threads))
    return Resources(wanted, found)


def work_unit(resources: Resources, unit: dict) -> Iterator[tuple[str, dict | None]]:
    return unit_events(WorkUnit.from_dict(unit), resources)


def eval_job(config: ResourceConfig):
    from ..executors import Job

    return Job(load_resources, work_unit, config.to_dict())

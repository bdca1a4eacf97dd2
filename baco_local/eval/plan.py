"""An evaluation from start to finish, without the command line: plan the work units,
and once they are done, aggregate them and write the results folder.

Folder layout (`out`): generations.jsonl (every unit's answers, scores and embeddings;
resumable), results.json (the --json object), report.md, plots/*.png, judge_check.json
(the judge check's ratings, reused while the judge and the checked answers stay).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..core.settings import LoadSettings
from ..pairs.loading import PairSpec
from .methods import Point
from .runner import ResourceConfig, WorkUnit
from .store import RecordStore, write_atomic
from .tasks import PromptItem

GENERATIONS = "generations.jsonl"
JUDGE_CHECK = "judge_check.json"


@dataclass(frozen=True)
class Evaluation:
    """What one `baco eval` computes: its units and everything needed to run them."""

    config: ResourceConfig
    prompts: tuple[PromptItem, ...]
    points: tuple[Point, ...]
    k: int
    seed: int
    threshold: float
    embedder: dict | None = None  # embedder_choice.EmbedderChoice.to_dict(), for the results

    @property
    def identity(self) -> str:
        return self.config.identity()

    @property
    def units(self) -> list[WorkUnit]:
        """Prompt-major: an interrupted run has every method on its first prompts."""
        return [
            WorkUnit.make(item, point, self.k, self.seed)
            for item in self.prompts
            for point in self.points
        ]

    @property
    def methods(self) -> dict[str, list[str]]:
        """{method: [point labels]} in the order given."""
        out: dict[str, list[str]] = {}
        for point in self.points:
            out.setdefault(point.method, []).append(point.label)
        return out


def make_evaluation(
    spec: PairSpec,
    load: LoadSettings,
    prompts: list[PromptItem],
    points: list[Point],
    *,
    k: int,
    seed: int = 0,
    embedding: str | None = None,
    threshold: float = 0.8,
    reference_texts: tuple[str, ...] = (),
    judge: str | None = None,
    embedder: dict | None = None,
) -> Evaluation:
    """embedding: a sentence embedder's GGUF, or None for the pair's aligned model.
    embedder: what to report about it (see eval.embedder_choice)."""
    config = ResourceConfig(spec, load, embedding, tuple(reference_texts), judge)
    return Evaluation(config, tuple(prompts), tuple(points), k, seed, threshold, embedder)


def pair_slug(spec: PairSpec) -> str:
    """A folder name for a pair: its catalog name, or the two file names."""
    if spec.name:
        name = spec.name
    else:
        aligned = "in-context" if spec.in_context else Path(str(spec.aligned)).stem
        name = f"{Path(str(spec.base)).stem}+{aligned}"
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", name)


def default_out_dir(config: ResourceConfig) -> Path:
    from ..paths import data_dir

    return data_dir() / "eval" / pair_slug(config.spec)


def open_store(out: Path) -> RecordStore:
    return RecordStore(Path(out) / GENERATIONS)


def describe(evaluation: Evaluation, todo: int, out: Path) -> str:
    units = len(evaluation.units)
    return (
        f"plan: {len(evaluation.prompts)} prompts x {len(evaluation.points)} method settings "
        f"x k={evaluation.k} = {units * evaluation.k} answers; {units - todo} of {units} "
        f"units already in {Path(out) / GENERATIONS}"
    )


def records_of(evaluation: Evaluation, store: RecordStore) -> list[dict]:
    """This evaluation's records that the store holds, in unit order."""
    keys = [u.key(evaluation.identity) for u in evaluation.units]
    return [store.get(key) for key in keys if key in store]


def check_judge(evaluation: Evaluation, store: RecordStore, out: Path, answers: int):
    """The judge check's ratings (judge_check.py) of up to `answers` of the run's answers:
    read from judge_check.json when it holds the same judge and answers, else rated now
    (loading the judge) and written there. None when no answer qualifies."""
    from .judge_check import open_judge, pick_answers, run_check

    picks = pick_answers(records_of(evaluation, store), answers, evaluation.seed)
    if not picks:
        return None
    wanted = {"identity": evaluation.identity, "picks": [[p["key"], p["index"]] for p in picks]}
    path = Path(out) / JUDGE_CHECK
    if path.exists():
        try:
            cached = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            cached = {}
        if all(cached.get(key) == value for key, value in wanted.items()):
            return cached
    scorer = open_judge(evaluation.config)
    try:
        rows = run_check(scorer, picks, evaluation.seed)
    finally:
        scorer.close()
    data = {**wanted, "rows": rows}
    write_atomic(path, json.dumps(data, indent=1) + "\n")
    return data


def finish(
    evaluation: Evaluation,
    store: RecordStore,
    out: Path,
    *,
    seconds: float,
    bootstrap=None,
    coverage_scale: str = "fixed",
    judge_check: dict | None = None,
) -> dict:
    """Aggregate this evaluation's records; write results.json, report.md and plots.
    bootstrap: a bootstrap.BootstrapSettings (default: 1000 resamples, the run's seed);
    coverage_scale: "fixed" or "minmax"; judge_check: check_judge's data, if run."""
    from .bootstrap import BootstrapSettings
    from .judge_check import summarise_check
    from .plots import draw_all, plots_available
    from .report import build_results, json_safe, markdown_report

    out = Path(out)
    records = records_of(evaluation, store)
    settings = bootstrap or BootstrapSettings(seed=evaluation.seed)
    results = build_results(
        records,
        evaluation.methods,
        _info(evaluation, records, seconds),
        bootstrap=settings,
        coverage_scale=coverage_scale,
    )
    if judge_check:
        results["judge_check"] = json_safe(summarise_check(judge_check["rows"], settings))
    plots = []
    if plots_available() and records:
        plots = [p.relative_to(out).as_posix() for p in draw_all(results, out / "plots")]
    results["files"] = {
        "generations": str(out / GENERATIONS),
        "results": str(out / "results.json"),
        "report": str(out / "report.md"),
        **({"judge_check": str(out / JUDGE_CHECK)} if judge_check else {}),
        "plots": [str(out / p) for p in plots],
    }
    write_atomic(out / "report.md", markdown_report(results, plots))
    write_atomic(out / "results.json", json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    return results


def _info(evaluation: Evaluation, records: list[dict], seconds: float) -> dict:
    config = evaluation.config
    return {
        "pair": records[0]["pair"] if records else pair_slug(config.spec),
        "tasks": sorted({p.task for p in evaluation.prompts}),
        "prompts": len(evaluation.prompts),
        "k": evaluation.k,
        "seed": evaluation.seed,
        "threshold": evaluation.threshold,
        "embedding": _embedding_description(evaluation),
        "embedder": evaluation.embedder or {"file": config.embedding},
        "judge": config.judge or "the pair's aligned model",
        "units": len(records),
        "seconds": round(seconds, 1),
        "compute_seconds": round(sum(r["seconds"] for r in records), 1),
    }


def _embedding_description(evaluation: Evaluation) -> str:
    if evaluation.embedder:
        return f"{evaluation.embedder['model']} ({evaluation.embedder['pooling']})"
    return evaluation.config.embedding or "aligned model, mean-pooled, centred"


def output_lines(results: dict) -> list[str]:
    """Where the files went, and how to get plots when matplotlib is missing."""
    files = results["files"]
    lines = [f"wrote {files['results']}", f"wrote {files['report']}"]
    if files["plots"]:
        folder = Path(files["plots"][0]).parent
        lines.append(f"wrote {len(files['plots'])} plots in {folder} (start with overview.png)")
    else:
        from .plots import plots_available

        if not plots_available():
            lines.append("no plots: matplotlib is missing; pip install 'baco-local[eval]'")
    return lines

"""What a run shows: the results object (also the --json output), a terminal table and
a Markdown report. Pure functions of the results dict; nothing here loads a model."""

from __future__ import annotations

import math

from . import interval_report as ir
from .aggregate import EXTRA_COLUMNS, metric_table
from .bootstrap import BootstrapSettings
from .coverage import SCALES
from .distinct_report import distinct_line, distinct_section
from .intervals import KINDS, analyse
from .judge_check import judge_check_lines, judge_check_section
from .methods import is_router_method
from .metrics import ALL_METRICS, DIVERSITY_METRICS, QUALITY_METRICS

COLUMNS = tuple(m.name for m in DIVERSITY_METRICS + QUALITY_METRICS)
_SHORT = {**{m.name: m.short for m in ALL_METRICS.values()}, "base_fraction": "base%"}


def build_results(
    records: list[dict],
    methods: dict[str, list[str]],
    info: dict,
    *,
    bootstrap: BootstrapSettings | None = None,
    coverage_scale: str = "fixed",
) -> dict:
    """The results object. records: the run's records; methods: {method: [point labels]}.
    info: run facts to carry (pair, tasks, k, threshold, seconds...). bootstrap: how to
    resample prompts for intervals (default 1000 resamples, seed 0; 0 for none);
    coverage_scale: "fixed" or "minmax", the scaling the headline Coverage uses (both
    are in the results)."""
    if coverage_scale not in SCALES:
        raise ValueError(f"coverage_scale {coverage_scale!r}: use one of {', '.join(SCALES)}")
    settings = bootstrap or BootstrapSettings()
    threshold = info["threshold"]
    table = metric_table(records, threshold)
    methods = {m: [lb for lb in labels if lb in table] for m, labels in methods.items()}
    methods = {m: labels for m, labels in methods.items() if labels}
    analysis = _analyse(records, methods, info["k"], threshold, settings)
    chosen = analysis["scales"].get(coverage_scale, {})
    results = {
        **info,
        "methods": {
            m: {"kind": "router" if is_router_method(m) else "baseline", "points": labels}
            for m, labels in methods.items()
        },
        "metrics": table,
        "metric_intervals": analysis.get("metric_intervals", {}),
        "bootstrap": {
            "resamples": settings.resamples,
            "seed": settings.seed,
            "level": settings.level,
            "unit": "prompt",
            "prompts": analysis.get("prompts", 0),
        },
        "coverage_scale": coverage_scale,
        **{key: chosen.get(key) for key in _CHOSEN},
        "frontier": chosen.get("frontier", {}),
        "coverage_by_scale": {
            scale: {key: part.get(key) for key in _BY_SCALE}
            for scale, part in analysis["scales"].items()
        },
        "fixed_axes": analysis.get("axes", {}),
        "point_differences": analysis.get("point_differences"),
        "by_task": _by_task(records, methods, info["k"], threshold, settings, coverage_scale),
        "metric_definitions": {
            m.name: {"kind": m.kind, "direction": m.direction, "description": m.description}
            for m in ALL_METRICS.values()
        },
    }
    return json_safe(results)


_CHOSEN = (
    "coverage",
    "coverage_intervals",
    "coverage_differences",
    "dominance",
    "dominance_intervals",
    "dominance_differences",
    "joint_improvement",
)
_BY_SCALE = ("coverage", "coverage_intervals", "coverage_differences", "joint_improvement")


def _analyse(records, methods, k, threshold, settings) -> dict:
    if not records or not methods:
        return {"scales": {}}
    return analyse(records, methods, k=k, threshold=threshold, settings=settings)


def _by_task(records, methods, k, threshold, settings, scale) -> dict:
    tasks = sorted({r["unit"]["task"] for r in records})
    if len(tasks) < 2:
        return {}
    out = {}
    for task in tasks:
        mine = [r for r in records if r["unit"]["task"] == task]
        table = metric_table(mine, threshold)
        kept = {m: [lb for lb in labels if lb in table] for m, labels in methods.items()}
        kept = {m: lbs for m, lbs in kept.items() if lbs}
        analysis = _analyse(mine, kept, k, threshold, settings)
        part = analysis["scales"][scale]
        out[task] = {"metrics": table, "metric_intervals": analysis.get("metric_intervals", {})}
        for key in ("coverage", "dominance", "coverage_intervals", "dominance_intervals"):
            if key in part:
                out[task][key] = {kind: part[key][kind] for kind in KINDS}
    return out


def json_safe(value):
    """nan and inf become None (JSON has neither); containers are copied."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


# --- text ---------------------------------------------------------------------------------


def _fmt(value, name: str = "") -> str:
    if value is None:
        return "-"
    if name == "base_fraction":
        return f"{value:.0%}"
    if name == "tokens":
        return f"{value:.0f}"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def metric_rows(results: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the metric table: one row per point."""
    names = [*EXTRA_COLUMNS, *COLUMNS]
    header = ["point", *(_SHORT.get(n, n) for n in names)]
    rows = []
    for labels in (m["points"] for m in results["methods"].values()):
        for label in labels:
            values = results["metrics"][label]
            rows.append([label, *(_fmt(values.get(n), n) for n in names)])
    return header, rows


def summary_rows(results: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the Coverage / Dominance table, with intervals: one row per method."""
    return ir.summary_rows(results)


def joint_line(results: dict) -> str:
    """The joint improvement under the headline scaling, with its interval and verdict."""
    return ir.joint_line(results)


def _timing(results: dict) -> str:
    return (
        f"this run {results['seconds']:.0f} s, generation and scoring of all units "
        f"{results['compute_seconds']:.0f} s"
    )


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def terminal_report(results: dict) -> str:
    directions = "  ".join(
        f"{m.short}{'+' if m.higher_is_better else '-'}" for m in ALL_METRICS.values()
    )
    scale = results.get("coverage_scale", "fixed")
    other = [s for s in results.get("coverage_by_scale", {}) if s != scale]
    lines = [
        f"{results['pair']}: {results['prompts']} prompts x k={results['k']} "
        f"({', '.join(results['tasks'])}); {_timing(results)}",
        f"quality judge: {results.get('judge', 'the pair' + chr(39) + 's aligned model')}",
        text_table(*metric_rows(results)),
        f"(+ higher is better, - lower is better: {directions}; intervals: report.md, --json)",
        "",
        f"Coverage (area under the trade-off curve; axes scaled by "
        f"{ir.SCALE_WORDS.get(scale, scale)}) and Dominance (share of the Pareto frontier), "
        "mean over planes:",
        text_table(*summary_rows(results)),
        "Coverage, overall, scaled both ways:",
        text_table(*ir.scale_rows(results, kinds=("overall",))),
        ir.interval_note(results),
        "",
        distinct_line(results),
        joint_line(results),
        *(ir.joint_line(results, s) for s in other),
        ir.method_verdict_line(results),
        ir.point_verdict_line(results),
        *judge_check_lines(results.get("judge_check")),
    ]
    return "\n".join(line for line in lines if line is not None)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def markdown_report(results: dict, plots: list[str]) -> str:
    """The report.md text. plots: PNG paths relative to the report."""
    parts = [
        f"# baco eval: {results['pair']}",
        "",
        f"{results['prompts']} prompts ({', '.join(results['tasks'])}), k = {results['k']} "
        f"answers each, seed {results['seed']}; {_timing(results)}. Embeddings: "
        f"{results['embedding']}; equivalence threshold {results['threshold']}. Quality "
        f"judge: {results.get('judge', 'the pair' + chr(39) + 's aligned model')}.",
        "",
        "## Coverage and Dominance",
        "",
        f"Axes scaled by {ir.SCALE_WORDS.get(results.get('coverage_scale', 'fixed'))}. "
        + ir.interval_note(results),
        "",
        markdown_table(*summary_rows(results)),
        "",
        *[ir.joint_line(results, s) + "\n" for s in results.get("coverage_by_scale", {})],
        *_verdict_section(results),
        "## Metrics (mean over prompts)",
        "",
        ir.interval_note(results),
        "",
        markdown_table(*ir.metric_rows(results, [*EXTRA_COLUMNS, *COLUMNS])),
        "",
        *judge_check_section(results.get("judge_check")),
        *_by_task_sections(results),
        *distinct_section(results, markdown_table),
        "## Metric definitions",
        "",
        *_definitions(),
    ]
    if plots:
        parts += ["", "## Trade-off frontiers", ""]
        parts += [f"![{p}]({p})" for p in plots]
    return "\n".join(parts) + "\n"


def _verdict_section(results: dict) -> list[str]:
    """Coverage both ways, and which differences are real."""
    parts = [
        "## Coverage scaled both ways",
        "",
        "Fixed ranges (the default) scale each axis by the metric's natural range (judge "
        "1-5, shares and distances 0-1, counts 1..k; an open metric by its observed range "
        "widened on each side by its bootstrap noise), so a spread within the judge's noise "
        "stays small; min-max (the paper's) stretches every axis to [0, 1] over the points. "
        f"Fixed ranges here: {ir.axes_line(results)}.",
        "",
        markdown_table(*ir.scale_rows(results)),
        "",
        "By quality metric (mean over the 11 planes with the judge's rating, and the 11 "
        "with its log-likelihood, as quality):",
        "",
        markdown_table(*ir.scale_rows(results, kinds=ir.BY_QUALITY)),
        "",
    ]
    if results.get("coverage_differences"):
        parts += [
            "## Which differences are real",
            "",
            "A difference is real when its interval (paired bootstrap over prompts: both "
            "methods on the same resampled prompts) excludes 0.",
            "",
            ir.method_verdict_line(results),
            "",
            markdown_table(*ir.difference_rows(results)),
            "",
            ir.point_verdict_line(results),
            "",
            markdown_table(*ir.point_difference_rows(results)),
            "",
        ]
    return parts


_TASK_KEYS = (
    "coverage",
    "dominance",
    "coverage_intervals",
    "dominance_intervals",
    "metric_intervals",
)


def _by_task_sections(results: dict) -> list[str]:
    parts = []
    for task, part in results.get("by_task", {}).items():
        view = {
            **results,
            "metrics": part["metrics"],
            **{k: part.get(k) for k in _TASK_KEYS},
        }
        view["methods"] = {
            m: {**info, "points": [lb for lb in info["points"] if lb in part["metrics"]]}
            for m, info in results["methods"].items()
        }
        parts += [f"## Task: {task}", "", markdown_table(*summary_rows(view)), ""]
        parts += [markdown_table(*ir.metric_rows(view, [*EXTRA_COLUMNS, *COLUMNS])), ""]
    return parts


def _definitions() -> list[str]:
    lines = ["| metric | kind | direction | meaning |", "|---|---|---|---|"]
    for m in ALL_METRICS.values():
        lines.append(f"| {m.short} ({m.name}) | {m.kind} | {m.direction} | {m.description} |")
    return lines

"""What a run shows: the results object (also the --json output), a terminal table and
a Markdown report. Pure functions of the results dict; nothing here loads a model."""

from __future__ import annotations

import math

from .aggregate import EXTRA_COLUMNS, metric_table, summarise
from .distinct_report import distinct_line, distinct_section
from .methods import is_router_method
from .metrics import ALL_METRICS, DIVERSITY_METRICS, QUALITY_METRICS

COLUMNS = tuple(m.name for m in DIVERSITY_METRICS + QUALITY_METRICS)
_SHORT = {**{m.name: m.short for m in ALL_METRICS.values()}, "base_fraction": "base%"}


def build_results(records: list[dict], methods: dict[str, list[str]], info: dict) -> dict:
    """The results object. records: the run's records; methods: {method: [point labels]}.
    info: run facts to carry (pair, tasks, k, seconds...)."""
    threshold = info["threshold"]
    table = metric_table(records, threshold)
    methods = {m: [lb for lb in labels if lb in table] for m, labels in methods.items()}
    methods = {m: labels for m, labels in methods.items() if labels}
    summary = summarise(table, methods)
    results = {
        **info,
        "methods": {
            m: {"kind": "router" if is_router_method(m) else "baseline", "points": labels}
            for m, labels in methods.items()
        },
        "metrics": table,
        "coverage": summary["coverage"],
        "dominance": summary["dominance"],
        "joint_improvement": summary["joint_improvement"],
        "frontier": summary["planes_frontier"],
        "by_task": _by_task(records, methods, threshold),
        "metric_definitions": {
            m.name: {"kind": m.kind, "direction": m.direction, "description": m.description}
            for m in ALL_METRICS.values()
        },
    }
    return json_safe(results)


def _by_task(records, methods, threshold) -> dict:
    tasks = sorted({r["unit"]["task"] for r in records})
    if len(tasks) < 2:
        return {}
    out = {}
    for task in tasks:
        table = metric_table([r for r in records if r["unit"]["task"] == task], threshold)
        mine = {m: [lb for lb in labels if lb in table] for m, labels in methods.items()}
        summary = summarise(table, {m: lbs for m, lbs in mine.items() if lbs})
        out[task] = {
            "metrics": table,
            "coverage": {k: summary["coverage"][k] for k in ("overall", "lexical", "semantic")},
            "dominance": {k: summary["dominance"][k] for k in ("overall", "lexical", "semantic")},
        }
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
    """Header and rows of the Coverage / Dominance table: one row per method."""
    header = ["method", "kind", "cov", "cov-lex", "cov-sem", "dom", "dom-lex", "dom-sem"]
    rows = []
    for method, info in results["methods"].items():
        cov, dom = results["coverage"], results["dominance"]
        rows.append(
            [method, info["kind"]]
            + [_fmt(cov[k].get(method)) for k in ("overall", "lexical", "semantic")]
            + [_fmt(dom[k].get(method)) for k in ("overall", "lexical", "semantic")]
        )
    return header, rows


def joint_line(results: dict) -> str:
    ji = results.get("joint_improvement")
    if not ji:
        return "Joint improvement: needs at least one router and one baseline."
    if ji["relative"] is None:
        return f"Joint improvement: {ji['baseline']} covers no area; {ji['router']} does."
    return (
        f"Joint improvement: {ji['relative']:+.1%} ({ji['router']}, coverage "
        f"{ji['router_coverage']:.3f}, vs the strongest baseline {ji['baseline']}, "
        f"{ji['baseline_coverage']:.3f})"
    )


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
    return "\n".join(
        [
            f"{results['pair']}: {results['prompts']} prompts x k={results['k']} "
            f"({', '.join(results['tasks'])}); {_timing(results)}",
            f"quality judge: {results.get('judge', 'the pair' + chr(39) + 's aligned model')}",
            text_table(*metric_rows(results)),
            f"(+ higher is better, - lower is better: {directions})",
            "",
            "Coverage (area under the trade-off curve) and Dominance (share of the Pareto "
            "frontier), mean over planes:",
            text_table(*summary_rows(results)),
            "",
            distinct_line(results),
            joint_line(results),
        ]
    )


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
        markdown_table(*summary_rows(results)),
        "",
        joint_line(results),
        "",
        "## Metrics (mean over prompts)",
        "",
        markdown_table(*metric_rows(results)),
        "",
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


def _by_task_sections(results: dict) -> list[str]:
    parts = []
    for task, part in results.get("by_task", {}).items():
        view = {
            **results,
            "metrics": part["metrics"],
            **{k: part[k] for k in ("coverage", "dominance")},
        }
        view["methods"] = {
            m: {**info, "points": [lb for lb in info["points"] if lb in part["metrics"]]}
            for m, info in results["methods"].items()
        }
        parts += [f"## Task: {task}", "", markdown_table(*summary_rows(view)), ""]
        parts += [markdown_table(*metric_rows(view)), ""]
    return parts


def _definitions() -> list[str]:
    lines = ["| metric | kind | direction | meaning |", "|---|---|---|---|"]
    for m in ALL_METRICS.values():
        lines.append(f"| {m.short} ({m.name}) | {m.kind} | {m.direction} | {m.description} |")
    return lines

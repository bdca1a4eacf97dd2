"""The intervals and verdicts in words and tables: Coverage with intervals under both
scalings, the joint improvement with "real" or "within noise", and which differences
between methods and points are real. Pure functions of the results dict (report.py)."""

from __future__ import annotations

from .metrics import ALL_METRICS

SCALE_WORDS = {"fixed": "fixed ranges", "minmax": "min-max, the paper's"}
KINDS = ("overall", "lexical", "semantic")
BY_QUALITY = ("judge_planes", "loglik_planes")


def number(value, name: str = "", signed: bool = False) -> str:
    if value is None:
        return "-"
    if name == "base_fraction":
        return f"{value:+.0%}" if signed else f"{value:.0%}"
    if name == "tokens":
        return f"{value:+.0f}" if signed else f"{value:.0f}"
    digits = 3 if abs(value) < 10 else 1
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def with_interval(value, interval, name: str = "", signed: bool = False) -> str:
    """ "0.412 [0.331, 0.502]"; the value alone when there is no interval."""
    text = number(value, name, signed)
    if value is None or not interval or None in interval:
        return text
    low, high = (number(x, name, signed) for x in interval)
    return f"{text} [{low}, {high}]"


# Below this many prompts a bootstrap over prompts draws only a few distinct sets (2
# prompts: 3), so its intervals are narrower than the truth and its verdicts are hints.
FEW_PROMPTS = 10


def interval_note(results: dict) -> str:
    boot = results.get("bootstrap") or {}
    if not boot.get("resamples"):
        return "No intervals (--bootstrap 0)."
    note = (
        f"[low, high]: {boot['level']:.0%} bootstrap interval over prompts "
        f"({boot['resamples']} resamples of the {boot['prompts']} prompts, seed {boot['seed']})."
    )
    return note + _few_prompts_caution(results)


def _few_prompts_caution(results: dict) -> str:
    prompts = (results.get("bootstrap") or {}).get("prompts") or 0
    if not prompts or prompts >= FEW_PROMPTS:
        return ""
    return (
        f" Caution: with {prompts} prompts, resampling them gives few distinct sets, so "
        f"these intervals are too narrow and every verdict is a hint; use "
        f"{FEW_PROMPTS} prompts or more."
    )


def summary_rows(results: dict) -> tuple[list[str], list[list[str]]]:
    """Coverage (headline scaling) and Dominance per method, each with its interval."""
    header = ["method", "kind", "cov", "cov-lex", "cov-sem", "dom", "dom-lex", "dom-sem"]
    rows = []
    for method, info in results["methods"].items():
        cells = [method, info["kind"]]
        for measure in ("coverage", "dominance"):
            values = results.get(measure) or {}
            intervals = results.get(f"{measure}_intervals") or {}
            for kind in KINDS:
                cells.append(
                    with_interval(
                        (values.get(kind) or {}).get(method),
                        (intervals.get(kind) or {}).get(method),
                    )
                )
        rows.append(cells)
    return header, rows


def scale_rows(results: dict, kinds=KINDS) -> tuple[list[str], list[list[str]]]:
    """Coverage per method under both scalings, side by side."""
    scales = results.get("coverage_by_scale") or {}
    header = ["method"] + [f"{kind}, {scale}" for scale in scales for kind in kinds]
    rows = []
    for method in results["methods"]:
        cells = [method]
        for part in scales.values():
            for kind in kinds:
                cells.append(
                    with_interval(
                        ((part.get("coverage") or {}).get(kind) or {}).get(method),
                        ((part.get("coverage_intervals") or {}).get(kind) or {}).get(method),
                    )
                )
        rows.append(cells)
    return header, rows


def joint_line(results: dict, scale: str | None = None) -> str:
    """The joint improvement under one scaling (default: the headline one), with its
    interval and the word: real, or within noise."""
    scale = scale or results.get("coverage_scale", "fixed")
    part = (results.get("coverage_by_scale") or {}).get(scale) or {}
    ji = part.get("joint_improvement") or results.get("joint_improvement")
    words = SCALE_WORDS.get(scale, scale)
    if not ji:
        return "Joint improvement: needs at least one router and one baseline."
    if ji["relative"] is None:
        return f"Joint improvement ({words}): {ji['baseline']} covers no area; {ji['router']} does."
    relative = f"{ji['relative']:+.1%}"
    interval = ji.get("relative_interval")
    if interval and None not in interval:
        relative += f" [{interval[0]:+.1%}, {interval[1]:+.1%}]"
    line = (
        f"Joint improvement ({words}): {relative} ({ji['router']}, coverage "
        f"{ji['router_coverage']:.3f}, vs the strongest baseline {ji['baseline']}, "
        f"{ji['baseline_coverage']:.3f})"
    )
    if "real" not in ji:
        return line + ": no interval, so no verdict"
    difference = with_interval(ji["difference"], ji["difference_interval"], signed=True)
    caution = " (few prompts: see the caution above)" if _few_prompts_caution(results) else ""
    if ji["real"]:
        return line + f": real (coverage difference {difference} excludes 0){caution}"
    return line + f": within noise, not real (coverage difference {difference} includes 0){caution}"


def method_verdict_line(results: dict, kind: str = "overall") -> str:
    """Which Coverage differences between methods are real (headline scaling)."""
    rows = (results.get("coverage_differences") or {}).get(kind) or []
    if not rows:
        return ""
    real = [_ordered(r) for r in rows if r["real"]]
    words = SCALE_WORDS.get(results.get("coverage_scale", "fixed"))
    said = "; ".join(f"{a} > {b} by {with_interval(d, i, signed=True)}" for a, b, d, i in real)
    rest = len(rows) - len(real)
    return (
        f"Real Coverage differences ({kind}, {words}; the interval excludes 0): "
        f"{said or 'none'}" + (f"; {rest} other pair(s) within noise." if rest else ".")
    )


def point_verdict_line(results: dict) -> str:
    """Which metric differences from the reference point are real, in one line."""
    diffs = results.get("point_differences")
    if not diffs:
        return ""
    parts = []
    for label, metrics in diffs["points"].items():
        real = [
            f"{ALL_METRICS[n].short} {with_interval(v['difference'], v['interval'], n, True)}"
            for n, v in metrics.items()
            if n in ALL_METRICS and v["real"]
        ]
        if real:
            parts.append(f"{label}: {', '.join(real)}")
    return (
        f"Metric differences from {diffs['reference']} that are real: "
        + ("; ".join(parts) if parts else "none; every difference is within noise")
        + "."
    )


def _ordered(row: dict):
    """(larger, smaller, positive difference, its interval)."""
    if row["difference"] >= 0:
        return row["a"], row["b"], row["difference"], row["interval"]
    low, high = row["interval"]
    return row["b"], row["a"], -row["difference"], [-high, -low]


def difference_rows(results: dict) -> tuple[list[str], list[list[str]]]:
    """Every pair of methods: Coverage difference (headline scaling) per kind, verdict."""
    header = ["a - b", *(f"coverage, {k}" for k in KINDS), "dominance, overall"]
    cov = results.get("coverage_differences") or {}
    dom = results.get("dominance_differences") or {}
    rows = []
    for pair in cov.get("overall") or []:
        found = [_find(cov.get(k), pair) for k in KINDS] + [_find(dom.get("overall"), pair)]
        rows.append([f"{pair['a']} - {pair['b']}", *map(_difference_cell, found)])
    return header, rows


def _difference_cell(row: dict | None) -> str:
    if row is None:
        return "-"
    text = with_interval(row["difference"], row["interval"], signed=True)
    return text + (" **real**" if row["real"] else "")


def _find(rows, like) -> dict | None:
    for row in rows or []:
        if (row["a"], row["b"]) == (like["a"], like["b"]):
            return row
    return None


def point_difference_rows(results: dict) -> tuple[list[str], list[list[str]]]:
    """Each point minus the reference, metric by metric; real ones in bold."""
    diffs = results.get("point_differences")
    names = [m.name for m in ALL_METRICS.values()]
    header = ["point", *(ALL_METRICS[n].short for n in names)]
    rows = []
    for label, metrics in (diffs or {}).get("points", {}).items():
        cells = [label]
        for n in names:
            v = metrics.get(n)
            text = "-" if v is None else with_interval(v["difference"], v["interval"], n, True)
            cells.append(f"**{text}**" if v and v["real"] else text)
        rows.append(cells)
    return header, rows


def metric_rows(results: dict, names) -> tuple[list[str], list[list[str]]]:
    """The metric table with each value's interval."""
    header = ["point", *(ALL_METRICS[n].short if n in ALL_METRICS else n for n in names)]
    rows = []
    for info in results["methods"].values():
        for label in info["points"]:
            values = results["metrics"][label]
            intervals = (results.get("metric_intervals") or {}).get(label, {})
            rows.append(
                [label, *(with_interval(values.get(n), intervals.get(n), n) for n in names)]
            )
    return header, rows


def axes_line(results: dict) -> str:
    """The fixed ranges, in the metrics' own units."""
    parts = []
    for name, (low, high) in (results.get("fixed_axes") or {}).items():
        sign = 1 if ALL_METRICS[name].higher_is_better else -1
        low, high = sorted((sign * low, sign * high))
        parts.append(f"{ALL_METRICS[name].short} {low:.3g} to {high:.3g}")
    return ", ".join(parts)

"""PNG pictures of the trade-off: one per plane, and an overview of all planes.

In every picture up and right are better: an axis whose metric is better when lower
(self-BLEU, compression, ROUGE-L) is drawn reversed. Each method is a line through its
points in sweep order (one marker when it has one point), with each point's 95%
bootstrap intervals as error bars; the grey dashed staircase is the pooled Pareto
frontier. coverage.png compares Coverage under both scalings, with intervals. Needs
matplotlib (the `eval` extra); without it `plots_available()` is False and nothing is
drawn.
"""

from __future__ import annotations

import io
from pathlib import Path

from .aggregate import pareto_mask, plane_name, planes
from .metrics import ALL_METRICS
from .store import write_atomic

_MARKERS = "os^Dv<>Pp*hX"


def plots_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def draw_all(results: dict, folder: Path) -> list[Path]:
    """Write one PNG per plane and overview.png into folder; return their paths."""
    from matplotlib.figure import Figure

    written = []
    names = [(d, q) for d, q in planes() if plane_name(d, q) in results["coverage"]["planes"]]
    for d, q in names:
        figure = Figure(figsize=(6.4, 4.8), layout="constrained")
        _draw_plane(figure.add_subplot(), results, d, q, legend=True)
        written.append(_save(figure, folder / f"{d}__{q}.png"))
    if names:
        written.insert(0, _save(_overview(results, names), folder / "overview.png"))
    if any(results["metrics"][lb].get("semantic_classes") is not None for lb in results["metrics"]):
        written.insert(1, _save(_distinct(results), folder / "distinct.png"))
    if results.get("coverage_by_scale"):
        written.insert(1, _save(_coverage_bars(results), folder / "coverage.png"))
    return written


def _overview(results: dict, names):
    from matplotlib.figure import Figure

    columns = 4
    rows = -(-len(names) // columns)
    figure = Figure(figsize=(4 * columns, 3.2 * rows + 0.6), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, (d, q) in zip(axes, names):
        _draw_plane(ax, results, d, q, legend=False)
    for ax in axes[len(names) :]:
        ax.set_axis_off()
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside upper center", ncols=min(len(labels), 6))
    return figure


def _draw_plane(ax, results: dict, diversity: str, quality: str, *, legend: bool) -> None:
    table, plane = results["metrics"], plane_name(diversity, quality)
    everything = []
    for i, (method, info) in enumerate(results["methods"].items()):
        xy = [
            (table[lb][diversity], table[lb][quality])
            for lb in info["points"]
            if table[lb][diversity] is not None and table[lb][quality] is not None
        ]
        if not xy:
            continue
        everything += xy
        xs, ys = zip(*xy)
        style = "-" if info["kind"] == "router" else "--"
        cov, interval = _coverage_label(results, method, plane if legend else None)
        (line,) = ax.plot(
            xs,
            ys,
            style,
            marker=_MARKERS[i % len(_MARKERS)],
            markersize=5,
            linewidth=1.2,
            label=f"{method} (coverage {cov:.2f}{interval}{'' if legend else ' overall'})",
        )
        _error_bars(ax, results, info["points"], diversity, quality, line.get_color())
    _draw_frontier(ax, everything, diversity, quality)
    for name, set_label, invert in (
        (diversity, ax.set_xlabel, ax.invert_xaxis),
        (quality, ax.set_ylabel, ax.invert_yaxis),
    ):
        spec = ALL_METRICS[name]
        set_label(f"{spec.short} ({'higher' if spec.higher_is_better else 'lower'} is better)")
        if not spec.higher_is_better:
            invert()
    ax.set_title(f"{ALL_METRICS[diversity].short} vs {ALL_METRICS[quality].short}", fontsize=10)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize=7, loc="best")


def _coverage_label(results: dict, method: str, plane: str | None) -> tuple[float, str]:
    """A method's coverage in one plane (or overall) and its interval as " [lo-hi]"."""
    intervals = results.get("coverage_intervals") or {}
    if plane is None:
        value, interval = results["coverage"]["overall"][method], intervals.get("overall")
    else:
        value, interval = (
            results["coverage"]["planes"][plane][method],
            (intervals.get("planes") or {}).get(plane),
        )
    bounds = (interval or {}).get(method)
    if not bounds or None in bounds:
        return value, ""
    return value, f" [{bounds[0]:.2f}-{bounds[1]:.2f}]"


def _error_bars(ax, results: dict, labels, diversity: str, quality: str, color) -> None:
    """Each point's 95% intervals on both axes (nothing without intervals)."""
    table, intervals = results["metrics"], results.get("metric_intervals") or {}
    for lb in labels:
        x, y = table[lb][diversity], table[lb][quality]
        bounds = intervals.get(lb) or {}
        dx, dy = bounds.get(diversity), bounds.get(quality)
        if x is None or y is None or not dx or not dy or None in (*dx, *dy):
            continue
        ax.errorbar(
            [x],
            [y],
            xerr=[[max(x - dx[0], 0)], [max(dx[1] - x, 0)]],
            yerr=[[max(y - dy[0], 0)], [max(dy[1] - y, 0)]],
            fmt="none",
            ecolor=color,
            elinewidth=0.8,
            alpha=0.45,
            capsize=2,
        )


def _coverage_bars(results: dict):
    """Overall Coverage per method, fixed ranges and min-max side by side, with intervals."""
    import numpy as np
    from matplotlib.figure import Figure

    scales = results.get("coverage_by_scale") or {}
    methods = list(results["methods"])
    figure = Figure(figsize=(max(6.4, 0.9 * len(methods) + 2), 4.2), layout="constrained")
    ax = figure.add_subplot()
    width = 0.8 / max(len(scales), 1)
    for s, (scale, part) in enumerate(scales.items()):
        values = [part["coverage"]["overall"].get(m) or 0.0 for m in methods]
        bounds = ((part.get("coverage_intervals") or {}).get("overall")) or {}
        errors = np.array(
            [
                [max(v - (bounds.get(m) or [v, v])[0], 0), max((bounds.get(m) or [v, v])[1] - v, 0)]
                for m, v in zip(methods, values)
            ]
        ).T
        xs = np.arange(len(methods)) + (s - (len(scales) - 1) / 2) * width
        ax.bar(xs, values, width, yerr=errors, capsize=3, label=f"{scale} scaling")
    ax.set_xticks(np.arange(len(methods)), methods, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("Coverage, mean over planes (higher is better)")
    ax.set_title("Coverage with 95% intervals over prompts, both scalings", fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return figure


def _draw_frontier(ax, xy, diversity: str, quality: str) -> None:
    import numpy as np

    if len(xy) < 2:
        return
    signs = np.array(
        [1.0 if ALL_METRICS[m].higher_is_better else -1.0 for m in (diversity, quality)]
    )
    points = np.array(xy, dtype=float)
    front = points[pareto_mask(points * signs)]
    front = front[np.argsort(front[:, 0] * signs[0])]
    ax.step(
        front[:, 0],
        front[:, 1],
        where="pre",
        color="grey",
        linestyle=":",
        linewidth=1,
        label="pooled frontier",
        zorder=0,
    )


def _save(figure, path: Path) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    write_atomic(path, buffer.getvalue())
    return path


def _distinct(results: dict):
    """NoveltyBench's distinct count of every point, against the judge's rating."""
    from matplotlib.figure import Figure

    from .distinct_report import embedder_phrase

    figure = Figure(figsize=(6.4, 4.8), layout="constrained")
    ax = figure.add_subplot()
    table = results["metrics"]
    for i, (method, info) in enumerate(results["methods"].items()):
        shown = [lb for lb in info["points"] if table[lb].get("semantic_classes") is not None]
        if not shown:
            continue
        xs = [table[lb]["semantic_classes"] for lb in shown]
        ys = [table[lb].get("judge") for lb in shown]
        ys = [float("nan") if y is None else y for y in ys]
        style = "-" if info["kind"] == "router" else "--"
        (line,) = ax.plot(
            xs, ys, style, marker=_MARKERS[i % len(_MARKERS)], markersize=5, label=method
        )
        _error_bars(ax, results, shown, "semantic_classes", "judge", line.get_color())
    ax.set_xlim(0.9, results["k"] + 0.1)
    ax.set_xlabel(f"distinct answers of k={results['k']} (higher is better)")
    ax.set_ylabel("judge (higher is better)")
    ax.set_title(f"NoveltyBench's distinct count ({embedder_phrase(results)})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return figure

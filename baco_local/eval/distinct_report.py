"""NoveltyBench's distinct count in the report: how many of a prompt's k answers say
something different, per method setting, with the embedder and threshold that decided.
Pure functions of the results dict (see report.py)."""

from __future__ import annotations

CLASSES, ENTROPY = "semantic_classes", "semantic_entropy"


def embedder_phrase(results: dict) -> str:
    """ "cosine >= 0.57 on sentence-transformers/all-MiniLM-L6-v2" (or the run's own)."""
    embedder = results.get("embedder") or {}
    model = embedder.get("model") or results.get("embedding") or "the embedder"
    return f"cosine >= {results['threshold']:g} on {model}"


def distinct_rows(results: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows: each point's mean distinct count (of k) and class entropy."""
    k = results["k"]
    header = ["point", f"distinct (of {k})", "share", "entropy (nats)"]
    rows = []
    for info in results["methods"].values():
        for label in info["points"]:
            values = results["metrics"][label]
            count, entropy = values.get(CLASSES), values.get(ENTROPY)
            rows.append(
                [
                    label,
                    "-" if count is None else f"{count:.2f}",
                    "-" if count is None else f"{count / k:.0%}",
                    "-" if entropy is None else f"{entropy:.2f}",
                ]
            )
    return header, rows


def distinct_line(results: dict) -> str:
    """One line for the terminal: each method's range of distinct counts."""
    parts = []
    for method, info in results["methods"].items():
        counts = [results["metrics"][lb].get(CLASSES) for lb in info["points"]]
        counts = [c for c in counts if c is not None]
        if counts:
            low, high = min(counts), max(counts)
            parts.append(f"{method} {low:.1f}" + ("" if high == low else f"-{high:.1f}"))
    return (
        f"Distinct answers of k={results['k']} (NoveltyBench's count, {embedder_phrase(results)}):"
        f" {', '.join(parts) or '-'}"
    )


def distinct_section(results: dict, table) -> list[str]:
    """The report.md section; table: report.markdown_table."""
    return [
        "## Distinct answers (NoveltyBench's count)",
        "",
        f"The k answers to a prompt are split greedily into classes of answers that say the "
        f"same thing ({embedder_phrase(results)} to a class's first answer); the count of "
        f"classes is averaged over prompts. The entropy of the class sizes is 0 when all "
        f"answers are one class and ln k when all differ.",
        "",
        table(*distinct_rows(results)),
        "",
    ]

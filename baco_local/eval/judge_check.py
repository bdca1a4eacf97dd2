"""Can the judge tell answers apart? A check of its own spread, reported with the run.

A sample of the run's answers (at most one per prompt first, then more) is rated again
four ways by the same judge:

- `original`: as generated (should repeat the stored rating);
- `reversed_rubric`: the same answer, the rubric's scale listed 1 to 5 instead of 5 to 1
  (a fair judge does not move much with the order of its options);
- `shuffled`: the answer's words in a random order (a broken answer);
- `truncated`: the answer's first third of words (an unfinished one).

The judge is **flagged** when it cannot separate a broken answer from the original (the
95% bootstrap interval over answers of original - broken does not lie above 0, for the
shuffled or the truncated answers), or when reordering its rubric moves its ratings as
much as breaking the answer does. A flagged judge's quality axis is mostly noise.

The pure parts (perturbations, picking, summarising) take plain data; `run_check` and
`open_judge` touch the model.
"""

from __future__ import annotations

import math

import numpy as np

from .bootstrap import BootstrapSettings, interval_list, percentile_interval, resample_weights
from .quality import JUDGE_RUBRIC

BROKEN = ("shuffled", "truncated")
MIN_WORDS = 6  # shorter answers break too little to be a fair test


def shuffle_words(text: str, seed: int) -> str:
    """The words of text in a random order (never the original order when 2+ differ)."""
    words = text.split()
    order = np.random.default_rng(seed).permutation(len(words))
    if len(words) > 1 and (order == np.arange(len(words))).all():
        order = np.roll(order, 1)
    return " ".join(words[i] for i in order)


def truncate_words(text: str, keep: float = 1 / 3) -> str:
    """The first `keep` share of the words (at least one)."""
    words = text.split()
    return " ".join(words[: max(1, math.ceil(len(words) * keep))])


def reversed_rubric(rubric: str = JUDGE_RUBRIC) -> str:
    """The rubric with its scale lines ("5 - ...", ..., "1 - ...") in the opposite order."""
    lines = rubric.split("\n")
    scale = [i for i, line in enumerate(lines) if line[:1].isdigit() and " - " in line[:5]]
    out = list(lines)
    for i, j in zip(scale, reversed(scale)):
        out[i] = lines[j]
    return "\n".join(out)


def pick_answers(records: list[dict], n: int, seed: int) -> list[dict]:
    """Up to n answers to check, each {key, index, prompt, text, stored}: answers of at
    least MIN_WORDS words with a stored rating, in a seeded order that takes one answer
    per prompt before a second from any prompt."""
    candidates = [
        {"key": r["key"], "index": i, "prompt": r["unit"]["prompt"], "text": a["text"],
         "stored": a["judge"], "prompt_id": (r["unit"]["task"], r["unit"]["prompt_id"])}
        for r in sorted(records, key=lambda r: r["key"])
        for i, a in enumerate(r["answers"])
        if a.get("judge") is not None and len(a["text"].split()) >= MIN_WORDS
    ]  # fmt: skip
    order = np.random.default_rng(seed).permutation(len(candidates))
    seen: dict = {}
    ranked = []
    for position in order:
        item = candidates[position]
        rank = seen.get(item["prompt_id"], 0)
        seen[item["prompt_id"]] = rank + 1
        ranked.append((rank, len(ranked), item))
    picked = [item for _, _, item in sorted(ranked, key=lambda t: t[:2])[:n]]
    return [{k: v for k, v in item.items() if k != "prompt_id"} for item in picked]


def run_check(scorer, picks: list[dict], seed: int) -> list[dict]:
    """Rate each picked answer four ways with scorer (a quality.QualityScorer)."""
    flipped = reversed_rubric()
    rows = []
    for i, pick in enumerate(picks):
        prompt, text = pick["prompt"], pick["text"]
        rows.append(
            {
                "key": pick["key"],
                "index": pick["index"],
                "stored": pick["stored"],
                "original": scorer.judge(prompt, text),
                "reversed_rubric": scorer.judge(prompt, text, flipped),
                "shuffled": scorer.judge(prompt, shuffle_words(text, seed + i)),
                "truncated": scorer.judge(prompt, truncate_words(text)),
            }
        )
    return rows


def summarise_check(rows: list[dict], settings: BootstrapSettings) -> dict:
    """Mean ratings, the paired differences with intervals over answers, and the flag."""
    ratings = {
        name: np.array([_nan(r[name]) for r in rows])
        for name in ("original", "reversed_rubric", *BROKEN)
    }
    keep = ~np.isnan(np.stack(list(ratings.values()))).any(axis=0)
    ratings = {name: values[keep] for name, values in ratings.items()}
    n = int(keep.sum())
    out = {"answers": n, "mean": {k: _mean(v) for k, v in ratings.items()}}
    if n < 2:
        return {**out, "flagged": True, "reasons": ["fewer than 2 answers could be checked"]}
    # Its verdict must not hang on --bootstrap (0 or 2 resamples gave intervals that
    # left out their own mean, and flags from them): always the default number, at the
    # run's seed, as an open metric's axis margin is measured.
    weights = resample_weights(n, BootstrapSettings.resamples, settings.seed) / n
    out["separation"] = {
        name: _difference(ratings["original"] - ratings[name], weights, settings.level)
        for name in BROKEN
    }
    out["rubric_order"] = _difference(
        ratings["reversed_rubric"] - ratings["original"], weights, settings.level
    )
    out["rubric_order"]["mean_abs"] = float(
        np.abs(ratings["reversed_rubric"] - ratings["original"]).mean()
    )
    stored = np.array([_nan(r["stored"]) for r in rows])[keep]
    out["repeat_max_abs"] = float(np.nanmax(np.abs(ratings["original"] - stored)))
    out["reasons"] = _reasons(out)
    out["flagged"] = bool(out["reasons"])
    return out


def _difference(values: np.ndarray, weights: np.ndarray, level: float) -> dict:
    low, high = percentile_interval(weights @ values, level)
    return {
        "mean": float(values.mean()),
        "interval": interval_list(low, high),
        "share_positive": float((values > 0).mean()),
        "real": bool(low > 0 or high < 0),
    }


def _reasons(out: dict) -> list[str]:
    reasons = []
    for name in BROKEN:
        part = out["separation"][name]
        if not (part["interval"][0] is not None and part["interval"][0] > 0):
            reasons.append(f"it does not rate {name} answers reliably below the originals")
    weakest = min(out["separation"][name]["mean"] for name in BROKEN)
    if out["rubric_order"]["mean_abs"] >= weakest:
        reasons.append("reordering its rubric moves its ratings as much as breaking the answer")
    return reasons


def _nan(x) -> float:
    return math.nan if x is None else float(x)


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None


# --- the model side ---------------------------------------------------------------------


def open_judge(config):
    """A QualityScorer for a run's ResourceConfig: the --judge file, or the pair's aligned
    model (the pair is loaded for it and closed with the scorer)."""
    from .quality import QualityScorer

    load = config.load
    if config.judge:
        return QualityScorer.for_file(
            config.judge, n_ctx=load.n_ctx, n_batch=load.n_batch, n_threads=load.n_threads or 1
        )
    from ..pairs.loading import LoadedPair

    loaded = LoadedPair(config.spec, load)
    try:
        scorer = QualityScorer.for_pair(loaded, n_threads=loaded.n_threads)
    except BaseException:
        loaded.close()
        raise
    scorer._owned.append(loaded)  # closed after the scorer's own context
    return scorer


# --- in words ---------------------------------------------------------------------------


def judge_check_lines(check: dict | None) -> list[str]:
    """The check in a few terminal lines (none when no check was run)."""
    if not check:
        return []
    mean = check["mean"]
    if "separation" not in check:
        return [f"Judge check: {check['reasons'][0]}."]
    parts = [
        f"{name} {mean[name]:.2f} (original - {name} {_signed(check['separation'][name])})"
        for name in BROKEN
    ]
    order = check["rubric_order"]
    verdict = (
        "FLAGGED: " + "; ".join(check["reasons"])
        if check["flagged"]
        else "it separates broken answers from the originals"
    )
    return [
        f"Judge check on {check['answers']} answers: original {mean['original']:.2f}, "
        + ", ".join(parts)
        + f"; rubric reversed moves a rating by {order['mean_abs']:.2f} on average "
        f"({_signed(order)}). {verdict}."
    ]


def judge_check_section(check: dict | None) -> list[str]:
    """The report.md section."""
    if not check:
        return []
    return [
        "## Judge check",
        "",
        "The same judge rated a sample of this run's answers again: as generated, with its "
        "rubric's scale reversed, with the answer's words shuffled, and cut to its first "
        "third. Differences are paired, with 95% bootstrap intervals over the answers.",
        "",
        *judge_check_lines(check),
        "",
    ]


def _signed(part: dict) -> str:
    low, high = part["interval"]
    return f"{part['mean']:+.2f} [{low:+.2f}, {high:+.2f}]"

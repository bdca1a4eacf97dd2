"""`baco bench`: speed and memory of one pair, measured as ratios within one run.

Every configuration decodes the same prompt to exactly max_tokens (end-of-turn and
stop strings ignored) from a cold prompt cache, so tokens per second and time to
first token compare like with like. Medians of the repeats are reported; the
machine is shared and noisy, so only ratios measured in one run mean much.

- tokens_per_second: tokens after the first over the time after the first token.
- ratio_to_aligned: a router's tokens per second over the aligned model alone.
- routing_share: share of the decode time spent outside llama.cpp (routing,
  sampling, bookkeeping), per router.
- ttft_seconds: from the request to the first token, prompt reading included.
- naive: the reference loop (both models every step, one after the other); pairs of
  one vocabulary only.
- memory: resident memory after 16 and after 512 generated tokens, and the peak.
- chars_per_second, ratio_chars_to_aligned: the same in characters, which compare
  across tokenizers (on a pair of two vocabularies, max_tokens counts the aligned
  model's tokens and tokens/s counts each model's own).
- handover (pairs of two vocabularies): hand-overs per answer, the share that rolled
  back tokens, and the share of decode time spent re-tokenizing.
- scheduler: the plan the thread planner learned (side by side or one after the
  other) and its median step times under each.
- speculative: each router is measured with every mode asked for (`--speculative`,
  default off and on: "p-punc" and "p-punc (on)"); for speculative runs, the mean
  run (tokens, or words across vocabularies, written per run), the acceptance over
  all walked positions and over those where the rule called for the base model.
- draft_costs: what one aligned decode and a base decode of k rows cost here, measured
  afresh (and stored for the speculative loop's planner).
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from dataclasses import dataclass

from ..core.settings import GenerationSettings
from ..decoding.draft_costs import draft_costs
from ..decoding.reference import reference_tokens
from ..pairs.prompt_formats import to_messages
from .process import cold, resident_mb

DEFAULT_PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."
ALONE = ("aligned", "base")


@dataclass(frozen=True)
class Run:
    tokens_per_second: float
    ttft_seconds: float
    outside_share: float
    chars_per_second: float = float("nan")
    handover: dict | None = None
    speculative: dict | None = None


def config_name(router: str, mode: str) -> str:
    return router if mode == "off" else f"{router} ({mode})"


def measure_router(
    pair,
    prompt: str,
    router: str,
    max_tokens: int,
    seed: int,
    lead: int,
    speculative: str = "off",
) -> Run:
    """One cold-cache generation of exactly max_tokens with `router`."""
    cold(pair)
    settings = GenerationSettings(
        router=router, max_tokens=max_tokens, seed=seed, lead=lead, speculative=speculative
    )
    busy_before = pair.scheduler.seconds
    context = pair.loop.context
    drafts_before = dataclasses.replace(context.drafts.stats)
    handover_before = dataclasses.replace(context.handover)
    result = pair.stream(prompt, settings, ignore_end=True).run()
    stats = result.stats
    # the loop's decodes are timed by the scheduler (the prompt's with the first token)
    model_seconds = pair.scheduler.seconds - busy_before - stats.ttft_seconds
    outside = 1 - model_seconds / stats.decode_seconds if stats.decode_seconds else 0.0
    chars = len(result.text) - len(result.tokens[0].text) if result.tokens else 0
    chars_rate = chars / stats.decode_seconds if stats.decode_seconds > 0 else 0.0
    drafts = context.drafts.stats.minus(drafts_before)
    spec = drafts.to_dict() if drafts.runs else None
    handover = None
    if pair.loaded.word_level:
        moved = context.handover.minus(handover_before)
        handover = moved.to_dict()
        handover["share_of_decode"] = (
            round(moved.seconds / stats.decode_seconds, 4) if stats.decode_seconds else 0.0
        )
    return Run(
        stats.tokens_per_second,
        stats.ttft_seconds,
        min(max(outside, 0.0), 1.0),
        chars_rate,
        handover,
        spec,
    )


def measure_naive(pair, prompt: str, router: str, max_tokens: int, seed: int, lead: int) -> Run:
    """The reference loop, timed the same way (first token excluded from the rate)."""
    cold(pair)
    settings = GenerationSettings(
        router=router, max_tokens=max_tokens, seed=seed, lead=lead, speculative="off"
    )
    times: list[float] = []
    started = time.perf_counter()
    reference_tokens(pair.loaded, to_messages(prompt), settings, pair.roles, timestamps=times)
    decode = times[-1] - times[0]
    rate = (len(times) - 1) / decode if decode > 0 else 0.0
    return Run(rate, times[0] - started, float("nan"))


def memory_growth(pair, prompt: str, seed: int) -> dict:
    """Resident memory after 16 and after 512 new tokens (the KV cache is preallocated)."""
    cold(pair)
    pair.stream(prompt, GenerationSettings(max_tokens=16, seed=seed), ignore_end=True).run()
    after_16, _ = resident_mb()
    cold(pair)
    pair.stream(prompt, GenerationSettings(max_tokens=512, seed=seed), ignore_end=True).run()
    after_512, peak = resident_mb()
    return {
        "rss_mb_after_16": round(after_16, 1),
        "rss_mb_after_512": round(after_512, 1),
        "growth_mb": round(after_512 - after_16, 1),
        "peak_rss_mb": round(peak, 1),
    }


def run_bench(
    pair,
    *,
    prompt: str = DEFAULT_PROMPT,
    routers: tuple[str, ...] = ("p-punc",),
    max_tokens: int = 128,
    repeats: int = 3,
    seed: int = 1,
    lead: int = GenerationSettings.lead,
    answers: int = 0,
    speculative: tuple[str, ...] = ("off", "on"),
    progress=None,
) -> dict:
    """Measure everything in one run; return the JSON-ready report. answers: also
    measure that many answers batched against the same answers one after the other."""
    say = progress or (lambda message: None)
    word_level = pair.loaded.word_level
    for router in routers:  # what this pair cannot run (the ensemble on two vocabularies)
        for mode in speculative:  # is refused before anything is measured
            pair.check_settings(
                GenerationSettings(router=router, lead=lead, speculative=mode, seed=seed)
            )
    say("warming up")
    pair.stream(prompt, GenerationSettings(max_tokens=8, seed=seed), ignore_end=True).run()
    memory = {}
    if pair.loaded.streams["base"].n_ctx >= 640:
        say("memory: 16 vs 512 tokens")
        memory = memory_growth(pair, prompt, seed)
    say("draft costs: one aligned decode, base decodes of 1-8 rows")
    costs = draft_costs(pair.loaded, pair.scheduler.n_threads, fresh=True)
    plan = [(r, "off") for r in ALONE] + [
        (r, mode) for r in routers if r not in ALONE for mode in speculative
    ]
    configs = [config_name(r, mode) for r, mode in plan]
    runs: dict[str, list[Run]] = {name: [] for name in [*configs, "naive"]}
    for repeat in range(repeats):
        for (router, mode), name in zip(plan, configs, strict=True):
            say(f"repeat {repeat + 1}/{repeats}: {name}")
            runs[name].append(
                measure_router(pair, prompt, router, max_tokens, seed + repeat, lead, mode)
            )
        if not word_level:
            say(f"repeat {repeat + 1}/{repeats}: naive loop ({routers[0]})")
            runs["naive"].append(
                measure_naive(pair, prompt, routers[0], max_tokens, seed + repeat, lead)
            )
    collab = [name for name in configs if name not in ALONE]
    report = _report(pair, runs, configs, collab, memory, max_tokens, repeats, prompt)
    report["lead"] = lead
    report["speculative"] = {
        name: _speculative_median(runs[name]) for name in collab if _speculative_median(runs[name])
    }
    report["draft_costs"] = {
        "aligned_decode_ms": round(costs.draft * 1000, 2),
        "base_rows_ms": [round(c * 1000, 2) for c in costs.score],
        "base_rows_ratio": [round(c / costs.score[0], 3) for c in costs.score],
        "together_ms": None if costs.together is None else round(costs.together * 1000, 2),
    }
    if answers:
        from .answers import measure_answers

        report["answers"] = measure_answers(
            pair, prompt, routers, answers, max_tokens, repeats, seed, lead, say
        )
    report["scheduler"] = pair.scheduler.planner.describe()
    return report


def _median(runs: list[Run], field: str) -> float:
    return statistics.median(getattr(r, field) for r in runs)


def _report(pair, runs, configs, collab, memory, max_tokens, repeats, prompt) -> dict:
    tps = {name: round(_median(runs[name], "tokens_per_second"), 2) for name in configs}
    cps = {name: round(_median(runs[name], "chars_per_second"), 1) for name in configs}
    aligned = tps["aligned"] or float("nan")
    report = {
        "pair": pair.label,
        "word_level": pair.loaded.word_level,
        "one_context": pair.loaded.one_context,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "repeats": repeats,
        "threads": pair.loaded.n_threads,
        "cpu_count": os.cpu_count(),
        "gpu_layers": pair.loaded.base_model.n_gpu_layers,
        "tokens_per_second": tps,
        "ratio_to_aligned": {r: round(tps[r] / aligned, 3) for r in collab},
        "chars_per_second": cps,
        "ratio_chars_to_aligned": {r: round(cps[r] / (cps["aligned"] or 1), 3) for r in collab},
        "routing_share": {r: round(_median(runs[r], "outside_share"), 4) for r in configs},
        "ttft_seconds": {n: round(_median(runs[n], "ttft_seconds"), 4) for n in configs},
        "ttft_ratio_to_aligned": {
            r: round(_median(runs[r], "ttft_seconds") / _median(runs["aligned"], "ttft_seconds"), 3)
            for r in collab
        },
        "naive": None,
        "peak_rss_mb": memory.get("peak_rss_mb", round(resident_mb()[1], 1)),
        "memory": memory,
    }
    if runs["naive"]:
        naive_tps = _median(runs["naive"], "tokens_per_second")
        report["naive"] = {
            "router": collab[0].split(" ")[0],
            "tokens_per_second": round(naive_tps, 2),
            "ratio_to_aligned": round(naive_tps / aligned, 3),
            "ttft_seconds": round(_median(runs["naive"], "ttft_seconds"), 4),
        }
    if pair.loaded.word_level:
        report["handover"] = {r: _handover_median(runs[r]) for r in configs}
    return report


def _speculative_median(runs: list[Run]) -> dict:
    found = [r.speculative for r in runs if r.speculative]
    if not found:
        return {}
    return {
        key: round(statistics.median(s[key] for s in found), 4)
        for key in ("mean_run", "mean_drafted", "acceptance", "base_acceptance")
        if all(s.get(key) is not None for s in found)
    }


def _handover_median(runs: list[Run]) -> dict:
    found = [r.handover for r in runs if r.handover]
    if not found:
        return {}
    return {
        key: round(statistics.median(h[key] for h in found), 4)
        for key in ("handovers", "rollbacks", "rollback_share", "share_of_decode")
    }

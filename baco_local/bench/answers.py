"""`baco bench --answers N`: N answers to one prompt decoded together, against the same N
answers generated one after the other, measured in one run.

For each router: total tokens per second (all answers' tokens over the wall time from
the request to the last token, prompt reading included, as a user waits for a set of
answers), time per answer, the batched/sequential ratio, and the share of the batched
run spent outside llama.cpp. Memory: resident memory after each, and how many KV cells
the batch held (the prompt once, plus each answer).
"""

from __future__ import annotations

import statistics
import time

from ..core.settings import GenerationSettings
from .process import cold, resident_mb


def measure_answers(pair, prompt, routers, n, max_tokens, repeats, seed, lead, say) -> dict:
    out = {"n": n, "routers": {}}
    for router in routers:
        batched, sequential = [], []
        for repeat in range(repeats):
            settings = GenerationSettings(
                router=router, max_tokens=max_tokens, seed=seed + 100 * repeat, lead=lead
            )
            say(f"answers {n}, repeat {repeat + 1}/{repeats}: {router} batched")
            batched.append(_batched(pair, prompt, n, settings))
            say(f"answers {n}, repeat {repeat + 1}/{repeats}: {router} one after the other")
            sequential.append(_one_by_one(pair, prompt, n, settings))
        b_tps = statistics.median(r["tokens_per_second"] for r in batched)
        s_tps = statistics.median(r["tokens_per_second"] for r in sequential)
        out["routers"][router] = {
            "batched_tokens_per_second": round(b_tps, 2),
            "sequential_tokens_per_second": round(s_tps, 2),
            "ratio": round(b_tps / s_tps, 3) if s_tps else None,
            "batched_seconds_per_answer": round(
                statistics.median(r["seconds"] for r in batched) / n, 3
            ),
            "sequential_seconds_per_answer": round(
                statistics.median(r["seconds"] for r in sequential) / n, 3
            ),
            "batched_outside_share": round(
                statistics.median(r["outside_share"] for r in batched), 4
            ),
            "rss_mb_after_batched": round(max(r["rss_mb"] for r in batched), 1),
            "rss_mb_after_sequential": round(max(r["rss_mb"] for r in sequential), 1),
        }
    return out


def _batched(pair, prompt, n, settings) -> dict:
    cold(pair)
    busy = pair.scheduler.seconds
    started = time.perf_counter()
    results = pair.stream_answers(prompt, n, settings, ignore_end=True).run()
    seconds = time.perf_counter() - started
    tokens = sum(r.stats.tokens for r in results)
    inside = pair.scheduler.seconds - busy
    return {
        "tokens_per_second": tokens / seconds,
        "seconds": seconds,
        "outside_share": max(0.0, 1 - inside / seconds),
        "rss_mb": resident_mb()[0],
    }


def _one_by_one(pair, prompt, n, settings) -> dict:
    """As brainstorm worked before batching: each answer reuses the prompt in the cache."""
    cold(pair)
    started = time.perf_counter()
    tokens = 0
    for i in range(n):
        result = pair.stream(
            prompt, settings.with_changes(seed=settings.seed + i), ignore_end=True
        ).run()
        tokens += result.stats.tokens
    seconds = time.perf_counter() - started
    return {"tokens_per_second": tokens / seconds, "seconds": seconds, "rss_mb": resident_mb()[0]}

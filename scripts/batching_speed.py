"""Continuous batching, measured: (1) 32 prompts answered one after another with
Pair.generate (a shell loop of `baco run` without its load time) against Pair.answer_all
(`baco batch`); (2) `baco serve` with 8 clients streaming at once, each one answer,
at --parallel 1 and --parallel 8: throughput and time to first token, with answers
of 96 tokens (`ignore_eos`), then with answers that end where the model ends them;
(3) a request with a long prompt (a page of this README to summarise) joining an answer
that streams: the streaming answer's longest pause and the tokens it writes while that
prompt is read, and the newcomer's time to first token.

    .venv/bin/python scripts/batching_speed.py              # the default pair
    .venv/bin/python scripts/batching_speed.py GEMMA.gguf   # that base, in-context aligned
"""

import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import openai

from baco_local import Message, Pair, Request

TOKENS, CLIENTS = 96, 8
PROMPTS = Path(__file__).resolve().parents[2] / "shared/data/noveltybench-curated.jsonl"


def prompts() -> list[str]:
    if PROMPTS.exists():
        return [json.loads(line)["prompt"] for line in PROMPTS.read_text().splitlines()[:32]]
    return [f"Write two sentences about idea number {i}." for i in range(32)]


def batch_file(pair_args: dict) -> dict:
    texts = prompts()
    with Pair.load(**pair_args) as pair:
        settings = pair.default_settings.with_changes(max_tokens=TOKENS, seed=1)
        pair.generate("warm up", settings.with_changes(max_tokens=8))
        start = time.perf_counter()
        for text in texts:
            pair.generate(text, settings, ignore_end=True)
        one_by_one = time.perf_counter() - start
        requests = [
            Request(str(i), (Message("user", t),), settings, ignore_end=True)
            for i, t in enumerate(texts)
        ]
        start = time.perf_counter()
        for _ in pair.answer_all(requests):
            pass
        together = time.perf_counter() - start
    return {
        "prompts": len(texts),
        "one_by_one_s": round(one_by_one, 1),
        "batched_s": round(together, 1),
        "speedup": round(one_by_one / together, 2),
    }


def _timestamps(handle, times: list[float]) -> None:
    for _ in handle:
        times.append(time.perf_counter())


def long_prompt_joins(pair_args: dict, repeats: int = 3) -> dict:
    page = (Path(__file__).resolve().parents[1] / "README.md").read_text()[:2400]
    rows = []
    with Pair.load(**pair_args) as pair:
        settings = pair.default_settings.with_changes(max_tokens=160, seed=1)
        pair.generate("warm up", settings.with_changes(max_tokens=8))
        for take in range(repeats):
            story = (Message("user", f"Write a story about the sea, take {take}."),)
            runner = pair.submit(Request("runner", story, settings, ignore_end=True))
            times: list[float] = []
            reader = threading.Thread(target=_timestamps, args=(runner, times))
            reader.start()
            while len(times) < 20 and reader.is_alive():
                time.sleep(0.005)
            joined = time.perf_counter()
            summary = (Message("user", "Summarise this:\n" + page),)
            newcomer = pair.submit(
                Request("newcomer", summary, settings.with_changes(max_tokens=8))
            )
            first = next(time.perf_counter() for _ in newcomer)
            newcomer.cancel()
            reader.join()
            after = [t for t in times if t >= joined]
            gaps = [b - a for a, b in zip([joined] + after, after)]
            rows.append((first - joined, max(gaps), sum(1 for t in after if t < first)))
    return {
        "prompt_tokens": {role: len(p.tokens) for role, p in newcomer.prompts.items()},
        "newcomer_ttft_s": round(statistics.median(r[0] for r in rows), 3),
        "runner_longest_pause_s": round(statistics.median(r[1] for r in rows), 3),
        "runner_tokens_while_read": statistics.median(r[2] for r in rows),
    }


def served(parallel: int, base: str | None, ignore_eos: bool) -> dict:
    command = [sys.executable, "-m", "baco_local", "serve", "--port", "0"]
    command += ["--parallel", str(parallel), "--max-tokens", str(TOKENS)]
    command += ["--base", base] if base else []
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    url = next(
        line.rsplit(" at ", 1)[1].strip() for line in process.stdout if " at http://" in line
    )
    client = openai.OpenAI(base_url=url, api_key="-", max_retries=0, timeout=900)
    texts = prompts()

    def ask(i: int, firsts: list, counts: list) -> None:
        start, first, count = time.perf_counter(), None, 0
        messages = [{"role": "user", "content": texts[i]}]
        for chunk in client.chat.completions.create(
            model="x",
            messages=messages,
            stream=True,
            seed=i,
            extra_body={"ignore_eos": ignore_eos},
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                count += 1
                first = first or time.perf_counter() - start
        firsts.append(first)
        counts.append(count)

    # A solo request's time to first token: the median of three, after a first request
    # that pays what only a server's first request pays (buffers, caches, costs measured).
    ask(0, [], [])
    solo: list = []
    for i in range(3):
        ask(i, solo, [])
    firsts, counts = [], []
    threads = [threading.Thread(target=ask, args=(i, firsts, counts)) for i in range(CLIENTS)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    process.send_signal(2)
    process.wait(timeout=60)
    return {
        "parallel": parallel,
        "tokens_per_s": round(sum(counts) / wall, 2),
        "solo_ttft_s": round(statistics.median(solo), 3),
        "median_ttft_s": round(statistics.median(firsts), 3),
        "max_ttft_s": round(max(firsts), 3),
    }


def main() -> None:
    base = sys.argv[1] if len(sys.argv) > 1 else None
    pair_args = {"base": base, "aligned": "in-context"} if base else {}
    report = {"joining": long_prompt_joins(pair_args)}
    print(report["joining"], flush=True)
    report["batch"] = batch_file(pair_args)
    print(report["batch"], flush=True)
    for answers, ignore_eos in (("96_tokens", True), ("model_ends", False)):
        runs = {}
        for parallel in (1, CLIENTS):
            runs[parallel] = served(parallel, base, ignore_eos)
            print(answers, runs[parallel], flush=True)
        one, many = runs[1], runs[CLIENTS]
        report[f"serve_{answers}"] = {
            "parallel_1": one,
            f"parallel_{CLIENTS}": many,
            "throughput_ratio": round(many["tokens_per_s"] / one["tokens_per_s"], 2),
            "worst_ttft_vs_solo": round(many["max_ttft_s"] / many["solo_ttft_s"], 2),
        }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

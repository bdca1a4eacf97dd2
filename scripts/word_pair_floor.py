"""How fast can a pair of two vocabularies go on this host? The default pair's answers,
priced at the decodes that collaboration cannot avoid, against the aligned model alone.

Collaboration word by word needs, at the least: each model decodes each token it writes
once (the draw after a word's last token is what shows the word ended); the aligned
model reads each run of the base's words in one decode; the base reads each run of the
aligned model's words in one batch, at the cost of a batch of two rows (the cheapest
batch of more than one).
Those decodes, at the median costs measured in the same run, make the floor of an
oracle that knows every routing decision in advance and spends nothing outside
llama.cpp. A schedule that cannot see the router's next choice also drafts at least one
word it throws away per switch to the base: the second floor.

    .venv/bin/python scripts/word_pair_floor.py

Prints the aligned model alone, the pair as it runs (p-punc, the pair's settings), and
both floors, in characters per second and as a ratio of the aligned model alone.
"""

import itertools
import statistics
import time

from baco_local import Pair
from baco_local.backend import context as backend_context

PROMPTS = (
    "Write a short story about a lighthouse keeper.",
    "Give me three ideas for a birthday party.",
    "Explain why the sky is blue.",
    "Describe a city in the year 3000.",
    "Write a poem about rain.",
)
TOKENS = 128


class DecodeLog:
    """Every llama.cpp decode while installed: (model file name, rows, seconds)."""

    def __init__(self):
        self.entries = []
        self._decode = backend_context.Context.decode

    def __enter__(self):
        log, decode = self.entries, self._decode

        def timed(context, rows):
            started = time.perf_counter()
            decode(context, rows)
            log.append((context.model.path.name, len(rows), time.perf_counter() - started))

        backend_context.Context.decode = timed
        return self

    def __exit__(self, *exc):
        backend_context.Context.decode = self._decode

    def median_single(self, name: str) -> float:
        return statistics.median(
            s for model, rows, s in self.entries if model == name and rows == 1
        )


def answer_all(pair, settings) -> tuple[float, list]:
    """Seconds, and each answer's tokens as (source, routed)."""
    started, answers = time.perf_counter(), []
    for seed, prompt in enumerate(PROMPTS):
        result = pair.generate(prompt, settings.with_changes(seed=seed), ignore_end=True)
        answers.append((result.text, [(t.source, t.routed) for t in result.tokens]))
    return time.perf_counter() - started, answers


def runs(tokens: list) -> list[tuple[str, int]]:
    """The answer as runs of words by one model: (source, tokens in the run)."""
    words = []
    for source, routed in tokens:
        if routed or not words:
            words.append([source, 0])
        words[-1][1] += 1
    return [
        (source, sum(n for _, n in group))
        for source, group in itertools.groupby(words, key=lambda w: w[0])
    ]


def main() -> None:
    with Pair.load() as pair:
        settings = pair.default_settings.with_changes(max_tokens=TOKENS, speculative="off")
        aligned_name = pair.loaded.aligned_model.path.name
        base_name = pair.loaded.base_model.path.name
        pair.generate("warm up", settings.with_changes(max_tokens=8, seed=1))
        with DecodeLog() as alone_log:
            alone_s, alone = answer_all(pair, settings.with_changes(router="aligned"))
        with DecodeLog() as pair_log:
            pair_s, together = answer_all(pair, settings)
        label = pair.label
    alone_chars = sum(len(text) for text, _ in alone) / alone_s
    chars = sum(len(text) for text, _ in together)
    aligned_token = pair_log.median_single(aligned_name)
    base_row = pair_log.median_single(base_name)
    two_rows = (
        statistics.median(
            [s for model, rows, s in pair_log.entries if model == base_name and rows == 2]
            or [base_row]
        )
        / base_row
    )
    pieces = [run for _, tokens in together for run in runs(tokens)]
    aligned_tokens = sum(n for source, n in pieces if source == "aligned")
    base_tokens = sum(n for source, n in pieces if source == "base")
    aligned_runs = sum(source == "aligned" for source, _ in pieces)
    switches = sum(source == "base" for source, _ in pieces)
    floor = (aligned_tokens + switches) * aligned_token
    floor += (base_tokens + aligned_runs * two_rows) * base_row
    drafted = floor + switches * aligned_token

    def line(label: str, seconds: float) -> str:
        rate = chars / seconds
        return f"{label:<44} {rate:7.1f} chars/s  x{rate / alone_chars:.2f}"

    print(f"pair: {label}   {len(PROMPTS)} prompts x {TOKENS} tokens, p-punc")
    print(
        f"decodes: aligned token {aligned_token * 1000:.1f} ms (alone "
        f"{alone_log.median_single(aligned_name) * 1000:.1f} ms); base row "
        f"{base_row * 1000:.1f} ms, two rows x{two_rows:.2f}"
    )
    print(
        f"answers: aligned {aligned_tokens} tokens in {aligned_runs} runs, "
        f"base {base_tokens} tokens in {switches} runs"
    )
    print(f"{'aligned model alone':<44} {alone_chars:7.1f} chars/s  x1.00")
    print(line("the pair, as it runs", pair_s))
    print(line("floor: an oracle, nothing outside llama.cpp", floor))
    print(line("floor: one word drafted in vain per switch", drafted))


if __name__ == "__main__":
    main()

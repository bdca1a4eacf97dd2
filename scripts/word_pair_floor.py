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

Then what a schedule that cannot see ahead gets: the same answers priced under the word
rule (the base reads each aligned word in a decode of its own) and under speculative
runs of L words (the aligned model drafts L words, the base reads them in one decode
with a logits row at each word start, and every word drafted past a switch to the base
is thrown away), at the base's decode costs measured here for k tokens with r logits
rows. Both are priced the same way, so their ratio is what drafting L words buys.

    .venv/bin/python scripts/word_pair_floor.py

Prints the aligned model alone, the pair as it runs (p-punc, the pair's settings), both
floors, in characters per second and as a ratio of the aligned model alone, then the
base's cost of a logits row and the priced schedules.
"""

import itertools
import statistics
import time

from baco_local import Pair
from baco_local.backend import context as backend_context
from baco_local.backend.context import Context, Row

PROMPTS = (
    "Write a short story about a lighthouse keeper.",
    "Give me three ideas for a birthday party.",
    "Explain why the sky is blue.",
    "Describe a city in the year 3000.",
    "Write a poem about rain.",
)
TOKENS = 128
RUN_LENGTHS = (2, 3, 4)  # words per speculative run, priced


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


def answer_all(pair, settings, decisions: list) -> tuple[float, list]:
    """Seconds, and each answer's tokens as (source, routed, text); each answer's
    routing decisions, with the base's top-1 probability there, go to `decisions`."""
    started, answers = time.perf_counter(), []
    for seed, prompt in enumerate(PROMPTS):
        result = pair.generate(prompt, settings.with_changes(seed=seed), ignore_end=True)
        answers.append((result.text, [(t.source, t.routed, t.text) for t in result.tokens]))
        decisions.append([(t.decision, t.top1_prob) for t in result.tokens if t.routed])
    return time.perf_counter() - started, answers


def words_of(tokens: list) -> list[tuple[str, int, str]]:
    """The answer as words: (source, tokens of the model that wrote it, text)."""
    words = []
    for source, routed, text in tokens:
        if routed or not words:
            words.append([source, 0, ""])
        words[-1][1] += 1
        words[-1][2] += text
    return [tuple(word) for word in words]


def runs(tokens: list) -> list[tuple[str, int]]:
    """The answer as runs of words by one model: (source, tokens in the run)."""
    return [
        (source, sum(n for _, n, _ in group))
        for source, group in itertools.groupby(words_of(tokens), key=lambda w: w[0])
    ]


def next_to_base(decisions: list, bins: int = 5) -> list[float]:
    """After a word routed to the aligned model: how often the next goes to the base,
    by the base's top-1 probability at that word (is the next switch foreseeable?)."""
    counts = [[0, 0] for _ in range(bins)]
    for answer in decisions:
        answer = [(d, p) for d, p in answer if p is not None]
        for (decision, top1), (following, _) in itertools.pairwise(answer):
            if decision == "aligned":
                counts[min(int(top1 * bins), bins - 1)][0] += 1
                counts[min(int(top1 * bins), bins - 1)][1] += following == "base"
    return [based / max(n, 1) for n, based in counts]


def base_costs(model, n_threads: int, longest: int = 8, repeats: int = 5) -> dict:
    """Median seconds of one base decode of k tokens with logits on the last r of them,
    for k in 1..longest and r in 0..k, in a small context of its own."""
    context = Context(model, n_ctx=256, n_batch=32, n_threads=n_threads, n_outputs=longest)
    try:
        context.decode([Row(100 + i, i, 0, False) for i in range(32)])  # a prompt to follow
        costs = {}
        for k in range(1, longest + 1):
            for r in range(k + 1):
                rows = [Row(200 + i, 32 + i, 0, i >= k - r) for i in range(k)]
                times = []
                for _ in range(repeats + 1):  # the first pays for page faults
                    started = time.perf_counter()
                    context.decode(rows)
                    times.append(time.perf_counter() - started)
                    context.remove(0, 32)
                costs[k, r] = statistics.median(times[1:])
        return costs
    finally:
        context.close()


def priced(words: list, aligned_token: float, base: dict, run_length: int | None) -> float:
    """Seconds of one answer's words: under the word rule (run_length None), or with
    the aligned model drafting runs of `run_length` words that the base reads in one
    decode, a logits row at each word start. words: (source, aligned tokens or base
    tokens, base tokens of the text). A slot the base wrote is drafted by the aligned
    model all the same, at the answer's mean aligned tokens per word."""
    longest = max(k for k, _ in base)

    def read(tokens: int, rows: int) -> float:
        """The base reads `tokens` in decodes of at most `longest`, its `rows` logits rows
        shared out among them in proportion."""
        seconds, done, rows_done = 0.0, 0, 0
        while done < tokens:
            size = min(longest, tokens - done)
            done += size
            share = min(size, round(rows * done / tokens) - rows_done)
            rows_done += share
            seconds += base[size, share]
        return seconds

    aligned_words = [n for source, n, _ in words if source == "aligned"]
    per_word = sum(aligned_words) / max(len(aligned_words), 1)
    seconds, i = 0.0, 0
    while i < len(words):
        source, tokens, base_tokens = words[i]
        if source == "base":  # it draws each token; the aligned model reads the word
            seconds += tokens * base[1, 1] + aligned_token
            i += 1
        elif run_length is None:
            seconds += tokens * aligned_token + read(base_tokens, 1)
            i += 1
        else:
            run = words[i : i + run_length]
            kept = next((j for j, w in enumerate(run) if w[0] == "base"), len(run))
            seconds += aligned_token * sum(n if s == "aligned" else per_word for s, n, _ in run)
            seconds += read(sum(w[2] for w in run), len(run))
            i += kept
    return seconds


def main() -> None:
    with Pair.load() as pair:
        base_model = pair.loaded.base_model
        base = base_costs(base_model, pair.loaded.n_threads)
        settings = pair.default_settings.with_changes(max_tokens=TOKENS, speculative="off")
        aligned_name = pair.loaded.aligned_model.path.name
        base_name = pair.loaded.base_model.path.name
        pair.generate("warm up", settings.with_changes(max_tokens=8, seed=1))
        decisions = []
        with DecodeLog() as alone_log:
            alone_s, alone = answer_all(pair, settings.with_changes(router="aligned"), [])
        with DecodeLog() as pair_log:
            pair_s, together = answer_all(pair, settings, decisions)
        label = pair.label
        words = [
            [(source, n, len(base_model.tokenize(text)) or 1) for source, n, text in words_of(t)]
            for _, t in together
        ]
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
    print(
        f"the base's decode of one token: {base[1, 0] * 1000:.1f} ms without a logits row, "
        f"{base[1, 1] * 1000:.1f} ms with one; each further row of a batch "
        f"+{(base[4, 4] - base[4, 1]) / 3 * 1000:.1f} ms"
    )
    every = [w for answer in words for w in answer]
    print(
        f"word starts: {len(every)}, of which the base wrote "
        f"{sum(w[0] == 'base' for w in every) / len(every):.0%}"
    )
    print(
        "after an aligned word, the next goes to the base with probability "
        + ", ".join(f"{p:.2f}" for p in next_to_base(decisions))
        + " (the base's top-1 there in [0, 0.2), ..., [0.8, 1])"
    )
    word_rule = sum(priced(answer, aligned_token, base, None) for answer in words)
    print(f"{'priced: the word rule':<44} {chars / word_rule:7.1f} chars/s  x1.00 of it")
    for length in RUN_LENGTHS:
        seconds = sum(priced(answer, aligned_token, base, length) for answer in words)
        print(
            f"{f'priced: speculative runs of {length} words':<44} {chars / seconds:7.1f} "
            f"chars/s  x{word_rule / seconds:.2f} of it"
        )


if __name__ == "__main__":
    main()

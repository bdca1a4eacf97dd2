"""`baco run PROMPT`: stream an answer (or n answers) from a pair."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading

from ..errors import PromptError
from . import common

# ANSI colours for --show-source: base words stand out, aligned text stays plain.
_BASE_STYLE = "\033[33m"  # yellow
_RESET = "\033[0m"


def register(commands) -> None:
    parser = commands.add_parser(
        "run",
        help="generate an answer to a prompt",
        description="Generate with a base/aligned pair, streaming tokens as they come.",
    )
    parser.add_argument("prompt", nargs="?", help="the prompt; '-' or nothing reads standard input")
    common.add_pair_options(parser)
    common.add_generation_options(parser)
    out = parser.add_argument_group("output")
    out.add_argument("--system", metavar="TEXT", help="system prompt")
    out.add_argument(
        "--raw",
        action="store_true",
        help="plain completion: feed the prompt unchanged to both models",
    )
    out.add_argument(
        "-n",
        "--n",
        type=int,
        default=1,
        metavar="N",
        help="number of answers (seeds seed, seed+1, ...), decoded together; each is printed "
        "whole as it ends",
    )
    out.add_argument(
        "--show-source",
        action="store_true",
        help="colour each token by the model that wrote it (base in yellow)",
    )
    out.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per answer per line, with every token's source",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    prompt = _read_prompt(args.prompt)
    common.generation_settings_from(args)  # validate before the slow load
    if args.n < 1:
        raise PromptError(f"--n {args.n} asks for no answers.", "use --n 1 or more")
    pair = common.load_pair_from(args)
    try:
        settings = common.settings_for_pair(args, pair)
        for note in pair.notes:
            sys.stderr.write(f"note: {note}\n")
        if args.n == 1:
            generation = pair.stream(prompt, settings, system=args.system, raw=args.raw)
            return 130 if _emit(generation, args) else 0
        answers = pair.stream_answers(prompt, args.n, settings, system=args.system, raw=args.raw)
        return 130 if _emit_answers(answers, args) else 0
    finally:
        pair.close()


def _emit_answers(answers, args) -> bool:
    """n answers decoded together: each is printed whole as soon as it and the ones before
    it have ended (their tokens interleave while they are written). True on Ctrl-C."""
    finished: dict = {}
    printed = 0

    def print_ready() -> None:
        nonlocal printed
        while printed in finished:
            _print_answer(finished.pop(printed), printed, args)
            printed += 1

    sys.stderr.write(
        f"writing {args.n} answers together; each is shown when it ends (Ctrl-C stops them)\n"
    )
    sys.stderr.flush()
    with _ctrl_c_cancels(answers) as stopped:
        for _ in answers:
            finished.update(answers.take_finished())
            print_ready()
    finished.update(enumerate(answers.results or []))
    print_ready()
    return stopped.is_set()


@contextlib.contextmanager
def _ctrl_c_cancels(generation):
    """Ctrl-C stops the generation cleanly (it keeps what each answer wrote) instead of
    raising in the middle of it; a second Ctrl-C interrupts at once."""
    stopped = threading.Event()

    def on_sigint(_signum, _frame):
        if stopped.is_set():
            raise KeyboardInterrupt
        stopped.set()
        generation.cancel()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield stopped
    finally:
        signal.signal(signal.SIGINT, previous)


def _print_answer(result, index: int, args) -> None:
    if args.json:
        record = {"answer": index, **result.to_dict()}
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(f"{'' if index == 0 else chr(10)}--- answer {index + 1}/{args.n} ---\n")
        sys.stdout.write("".join(_shown(event, args) for event in result.tokens) + "\n")
        _summary(result, args)
    sys.stdout.flush()


def _shown(event, args) -> str:
    if args.show_source and event.source == "base":
        return f"{_BASE_STYLE}{event.text}{_RESET}" if sys.stdout.isatty() else f"[{event.text}]"
    return event.text


def _emit(generation, args) -> bool:
    """Stream one answer to stdout; return True when Ctrl-C stopped it."""
    interrupted = False
    shown = 0  # characters of the answer already printed
    events = iter(generation)
    try:
        for event in events:
            if args.json:
                continue
            sys.stdout.write(_shown(event, args))
            sys.stdout.flush()
            shown += len(event.text)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        events.close()  # finishes the generation, keeping what it produced
    result = generation.result
    if not args.json and len(result.text) > shown:
        sys.stdout.write(result.text[shown:])  # text held back for a stop string
    if args.json:
        sys.stdout.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
    else:
        sys.stdout.write("\n")
        _summary(result, args)
    sys.stdout.flush()
    return interrupted


def _summary(result, args) -> None:
    s = result.settings
    gamma = "" if s.gamma is None else f" gamma={s.gamma:g}"
    stats = result.stats
    legend = ""
    if args.show_source:
        legend = " | base in yellow" if sys.stdout.isatty() else " | [base] in brackets"
    sys.stderr.write(
        f"[{result.pair} | {s.router}{gamma} | {stats.tokens} tokens, "
        f"{stats.base_fraction:.0%} base | {stats.tokens_per_second:.1f} tok/s | "
        f"seed {s.seed} | {result.finish_reason}{legend}]\n"
    )


def _read_prompt(prompt: str | None) -> str:
    if prompt is None or prompt == "-":
        if prompt is None and sys.stdin.isatty():
            raise PromptError("No prompt given.", 'pass one: baco run "Name three moons"')
        prompt = sys.stdin.read()
    if not prompt.strip():
        raise PromptError("The prompt is empty.", "give some text to answer")
    return prompt

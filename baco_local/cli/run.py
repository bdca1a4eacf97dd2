"""`baco run PROMPT`: stream an answer (or n answers) from a pair."""

from __future__ import annotations

import argparse
import json
import sys

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
        help="number of answers (seeds seed, seed+1, ...)",
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
    settings = common.generation_settings_from(args)  # validate before the slow load
    if args.n < 1:
        raise PromptError(f"--n {args.n} asks for no answers.", "use --n 1 or more")
    pair = common.load_pair_from(args)
    try:
        settings = common.settings_for_pair(args, settings, pair)
        for note in pair.notes:
            sys.stderr.write(f"note: {note}\n")
        seed = settings.seed
        for i in range(args.n):
            if seed is not None:
                settings = settings.with_changes(seed=seed + i)
            generation = pair.stream(prompt, settings, system=args.system, raw=args.raw)
            if not args.json and args.n > 1:
                sys.stdout.write(f"{'' if i == 0 else chr(10)}--- answer {i + 1}/{args.n} ---\n")
            interrupted = _emit(generation, args)
            seed = generation.result.settings.seed if seed is None else seed
            if interrupted:
                return 130
    finally:
        pair.close()
    return 0


def _emit(generation, args) -> bool:
    """Stream one answer to stdout; return True when Ctrl-C stopped it."""
    colour = args.show_source and sys.stdout.isatty()
    interrupted = False
    shown = 0  # characters of the answer already printed
    events = iter(generation)
    try:
        for event in events:
            if args.json:
                continue
            text = event.text
            if args.show_source and event.source == "base":
                text = f"{_BASE_STYLE}{text}{_RESET}" if colour else f"[{text}]"
            sys.stdout.write(text)
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

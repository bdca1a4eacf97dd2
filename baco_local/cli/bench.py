"""`baco bench`: tokens per second, time to first token, routing overhead and memory."""

from __future__ import annotations

import json
import sys

from ..core.settings import GenerationSettings
from ..errors import SettingsError
from . import common


def register(commands) -> None:
    from ..bench.speed import DEFAULT_PROMPT

    parser = commands.add_parser(
        "bench",
        help="measure speed and memory of a pair",
        description="Decode one prompt to exactly --max-tokens with the aligned model alone, "
        "the base alone and each router, from a cold cache; report medians of the repeats.",
    )
    common.add_pair_options(parser, ctx_default="2048, or more when --answers needs it")
    parser.add_argument("--prompt", default=DEFAULT_PROMPT, help="prompt to decode from")
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=128,
        metavar="N",
        help="tokens per run (default %(default)s)",
    )
    parser.add_argument(
        "--routers",
        default="p-punc",
        metavar="LIST",
        help="comma-separated routers (default %(default)s)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        metavar="N",
        help="runs per configuration; medians are reported (default %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=1,
        metavar="S",
        help="seed of every measured answer, so runs compare alike (default %(default)s)",
    )
    parser.add_argument(
        "--lead",
        type=int,
        default=GenerationSettings.lead,
        metavar="N",
        help="tokens the aligned model writes before routing starts (default %(default)s)",
    )
    parser.add_argument(
        "--answers",
        type=int,
        default=0,
        metavar="N",
        help="also measure N answers decoded together against the same N one after the other",
    )
    parser.add_argument(
        "--speculative",
        default="off,on",
        metavar="MODES",
        help="comma-separated modes each router is measured with: off, on, auto "
        "(default %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.set_defaults(handler=bench)


def bench(args) -> int:
    from ..bench.speed import run_bench

    routers = tuple(r.strip() for r in args.routers.split(",") if r.strip())
    for name in routers:  # every setting checked before the slow load
        GenerationSettings(router=name, lead=args.lead, max_tokens=max(args.max_tokens, 1))
    modes = tuple(dict.fromkeys(m.strip() for m in args.speculative.split(",") if m.strip()))
    for mode in modes:
        GenerationSettings(speculative=mode)  # a clear error for an unknown mode
    if not modes:
        raise SettingsError("--speculative is empty.", "name at least one mode, e.g. off,on")
    if not routers:
        raise SettingsError("--routers is empty.", "name at least one router, e.g. p-punc")
    if args.answers < 0 or args.answers == 1:
        raise SettingsError(
            f"--answers {args.answers}: the comparison needs 2 answers or more.",
            "use e.g. --answers 8 (or leave it out)",
        )
    if args.repeats < 1 or args.max_tokens < 2:
        raise SettingsError(
            "--repeats must be at least 1 and --max-tokens at least 2.",
            "use e.g. --repeats 3 --max-tokens 128",
        )
    if args.ctx is None:  # the prompt and the 512-token memory check, or every answer
        args.ctx = max(2048, 256 + (args.answers or 1) * (args.max_tokens * 3 // 2 + 16))
    if args.parallel is None:
        args.parallel = max(args.answers, 8)
    pair = common.load_pair_from(args)
    try:
        report = run_bench(
            pair,
            prompt=args.prompt,
            routers=routers,
            max_tokens=args.max_tokens,
            repeats=args.repeats,
            seed=args.seed,
            lead=args.lead,
            answers=args.answers,
            speculative=modes,
            progress=lambda message: sys.stderr.write(f"bench: {message}\n"),
        )
    finally:
        pair.close()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
    return 0


def format_report(report: dict) -> str:
    tps, ttft, share = report["tokens_per_second"], report["ttft_seconds"], report["routing_share"]
    cps = report.get("chars_per_second", {})
    lines = [
        f"pair: {report['pair']}   threads: {report['threads']}   "
        f"{report['max_tokens']} tokens, median of {report['repeats']}",
        "",
        f"{'configuration':<16}{'tok/s':>8}{'x aligned':>11}{'chars/s':>9}{'x aligned':>11}"
        f"{'TTFT s':>9}{'outside':>9}",
    ]
    for name, rate in tps.items():
        ratio = rate / tps["aligned"] if tps["aligned"] else float("nan")
        chars = cps.get(name, float("nan"))
        chars_ratio = chars / cps["aligned"] if cps.get("aligned") else float("nan")
        lines.append(
            f"{name:<16}{rate:>8.1f}{ratio:>11.2f}{chars:>9.1f}{chars_ratio:>11.2f}"
            f"{ttft[name]:>9.3f}{share[name]:>9.1%}"
        )
    naive = report["naive"]
    if naive:
        lines.append(
            f"{'naive ' + naive['router']:<16}{naive['tokens_per_second']:>8.1f}"
            f"{naive['ratio_to_aligned']:>11.2f}{'':>20}{naive['ttft_seconds']:>9.3f}"
        )
    for router, h in (report.get("handover") or {}).items():
        if h and router not in ("aligned", "base"):
            lines.append(
                f"hand-over ({router}): {h['handovers']:.0f} per answer, "
                f"{h['rollback_share']:.1%} rolled back, {h['share_of_decode']:.1%} of decode time"
            )
    for name, spec in (report.get("speculative") or {}).items():
        parts = [f"mean run {spec.get('mean_run', float('nan')):.2f} of "]
        parts.append(f"{spec.get('mean_drafted', float('nan')):.2f} drafted")
        parts.append(f", kept {spec.get('acceptance', float('nan')):.1%}")
        if "base_acceptance" in spec:
            parts.append(f", where the base was called for {spec['base_acceptance']:.1%}")
        lines.append(f"speculative ({name}): " + "".join(parts))
    costs = report.get("draft_costs")
    if costs:
        curve = " ".join(
            f"{k}:{ratio:.2f}x" for k, ratio in enumerate(costs["base_rows_ratio"], start=1)
        )
        lines.append(
            f"decode costs: aligned 1 token {costs['aligned_decode_ms']:.1f} ms; base k rows "
            f"vs 1 ({costs['base_rows_ms'][0]:.1f} ms): {curve}"
        )
        if costs.get("together_ms") is not None:
            lines.append(
                f"one context: a token of each model in one decode {costs['together_ms']:.1f} ms "
                f"({costs['together_ms'] / costs['base_rows_ms'][0]:.2f}x one base token)"
            )
    for kind, plan in (report.get("scheduler") or {}).items():
        times = ", ".join(
            f"{name} {ms} ms" for name, ms in plan["median_step_ms"].items() if ms is not None
        )
        lines.append(f"scheduler ({kind} steps): {plan['plan']} ({times})")
    answers = report.get("answers")
    if answers:
        lines += ["", f"{answers['n']} answers:"]
        for router, a in answers["routers"].items():
            lines.append(
                f"  {router}: batched {a['batched_tokens_per_second']:.1f} tok/s vs one after "
                f"the other {a['sequential_tokens_per_second']:.1f} ({a['ratio']:.2f}x); "
                f"{a['batched_seconds_per_answer']:.2f} s vs "
                f"{a['sequential_seconds_per_answer']:.2f} s per answer; "
                f"outside llama.cpp {a['batched_outside_share']:.1%}"
            )
    memory = report.get("memory") or {}
    if memory:
        lines += [
            "",
            f"resident memory: {memory['rss_mb_after_16']:.0f} MB after 16 tokens, "
            f"{memory['rss_mb_after_512']:.0f} MB after 512 "
            f"(growth {memory['growth_mb']:+.1f} MB); peak {memory['peak_rss_mb']:.0f} MB",
        ]
    return "\n".join(lines)

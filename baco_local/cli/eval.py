"""`baco eval`: measure the diversity-quality trade-off of routers and baselines on a pair.

Plan (prompts x method settings), generate what the run's JSONL does not hold yet
(resumable; --workers N processes), then aggregate: the metric table, Coverage and
Dominance per plane, the joint improvement, a Markdown report and PNG frontiers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from ..errors import SettingsError
from . import common

REFERENCE_PROMPTS_PER_TASK = 8  # built-in prompts whose mean embedding centres the fallback


def register(commands) -> None:
    parser = commands.add_parser(
        "eval",
        help="measure diversity and quality of routers and baselines on a pair",
        description="Generate k answers per prompt with each method and setting, measure 11 "
        "diversity and 2 quality metrics, and summarise each method by Coverage (area under "
        "its trade-off curve) and Dominance (share of the pooled Pareto frontier).",
    )
    common.add_pair_options(parser)
    common.add_generation_options(parser, router=False, defaults={"max_tokens": 128})
    _add_what_options(parser.add_argument_group("what to evaluate"))
    _add_output_options(parser.add_argument_group("measuring and output"))
    common.add_cluster_options(parser, "generate")
    parser.set_defaults(handler=run)


def _add_what_options(what) -> None:
    what.add_argument(
        "--tasks",
        metavar="LIST",
        help="built-in prompt sets, comma-separated: instructions, dialogue, stories "
        "(default: all three, or none when --prompts is given)",
    )
    what.add_argument(
        "--prompts",
        action="append",
        default=[],
        metavar="FILE",
        help="a JSONL prompt file (id, prompt, optional category), NoveltyBench style; repeatable",
    )
    what.add_argument(
        "--limit",
        type=int,
        default=5,
        metavar="N",
        help="first N prompts of each task, 0 for all (default %(default)s)",
    )
    what.add_argument(
        "-k", type=int, default=10, metavar="N", help="answers per prompt (default %(default)s)"
    )
    what.add_argument(
        "--methods",
        metavar="LIST",
        help="routers and baselines, comma-separated; NAME@V1/V2 sets a sweep; "
        "ROUTER@G+min-p@T1/T2 combines a router with min-p sampling "
        "(default: aligned,base,min-p,prompted,nudging,ensemble,p-punc; baselines: aligned, "
        "base, min-p, prompted, nudging, random, ensemble)",
    )
    what.add_argument(
        "--gammas",
        metavar="LIST",
        help="gamma sweep for every router given without @values, e.g. 0.3,0.5,0.7",
    )


def _add_output_options(how) -> None:
    how.add_argument(
        "--embedding",
        metavar="NAME|FILE|aligned",
        help="the sentence embedder of the semantic metrics: a catalog name (default "
        "all-minilm-l6-v2, offline from the eval extra), an embedding GGUF file, or 'aligned' "
        "(the pair's aligned model, mean-pooled: figures then do not compare across pairs)",
    )
    how.add_argument(
        "--judge",
        metavar="PATH|aligned",
        default="aligned",
        help="the model that rates quality: a GGUF instruct model with a chat template, or "
        "'aligned' (the pair's aligned model; default). Use one judge to compare pairs",
    )
    how.add_argument(
        "--same-above",
        type=float,
        metavar="COS",
        help="cosine similarity at which two answers count as one (NoveltyBench's distinct "
        "count; default 0.57, chosen for MiniLM; 0.8 with --embedding aligned)",
    )
    how.add_argument(
        "--bootstrap",
        type=int,
        default=1000,
        metavar="B",
        help="resamples of the prompts for every figure's 95%% interval (seeded by --seed; "
        "0 for none; default %(default)s)",
    )
    how.add_argument(
        "--coverage-scale",
        choices=("fixed", "minmax"),
        default="fixed",
        help="how Coverage scales each plane's axes: fixed ranges per metric (judge 1-5, "
        "shares 0-1, counts 1..k; default) or min-max over the points (the paper's); the "
        "report shows both",
    )
    how.add_argument(
        "--judge-check",
        type=int,
        default=16,
        metavar="N",
        help="rate N of the answers again, reversed rubric, shuffled and truncated, to see "
        "whether the judge tells them apart (0 to skip; default %(default)s)",
    )
    how.add_argument("--out", metavar="DIR", help="results folder (default: in baco's data dir)")
    how.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="generate in N processes (with --ray: N Ray actors; default: as many as the "
        "cluster holds), each loading the pair once (default: this process alone)",
    )
    how.add_argument("--json", action="store_true", help="print one JSON object instead of tables")


def run(args: argparse.Namespace) -> int:
    from ..eval import plan
    from ..eval.bootstrap import BootstrapSettings

    started = time.perf_counter()
    evaluation = evaluation_from(args)
    out = Path(args.out).expanduser() if args.out else plan.default_out_dir(evaluation.config)
    if out.exists() and not out.is_dir():
        raise SettingsError(
            f"--out {out} is a file, not a folder.", "name a folder (it is created if missing)"
        )
    store = plan.open_store(out)
    todo = [u for u in evaluation.units if u.key(evaluation.identity) not in store]
    _say(plan.describe(evaluation, len(todo), out))
    if todo:
        _generate(todo, evaluation, store, args)
    check = None
    if args.judge_check:
        _say(f"judge check: up to {args.judge_check} answers, rated 4 ways (cached in {out})")
        check = plan.check_judge(evaluation, store, out, args.judge_check)
    results = plan.finish(
        evaluation,
        store,
        out,
        seconds=time.perf_counter() - started,
        bootstrap=BootstrapSettings(args.bootstrap, 0 if args.seed is None else args.seed),
        coverage_scale=args.coverage_scale,
        judge_check=check,
    )
    if args.json:
        sys.stdout.write(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    else:
        from ..eval.report import terminal_report

        sys.stdout.write(terminal_report(results) + "\n")
    for line in plan.output_lines(results):
        _say(line)
    return 0


def evaluation_from(args: argparse.Namespace):
    """Check every option (before anything slow) and plan the evaluation."""
    from ..eval import methods, plan, tasks

    _check_counts(args)
    common.check_cluster_options(args)
    shared = common.generation_settings_from(args, router="aligned", seed=None)
    gammas = _numbers(args.gammas, "--gammas") if args.gammas else None
    spec = _pair_spec(args)
    items = methods.parse_methods(args.methods) if args.methods else methods.default_methods()
    items = _for_the_pair(items, spec, explicit=bool(args.methods))
    points = methods.build_points(items, shared, gammas)
    names = (
        _split(args.tasks) if args.tasks else ([] if args.prompts else list(tasks.BUILTIN_TASKS))
    )
    prompts = tasks.select_prompts(names, args.prompts, args.limit or None)
    if not prompts:
        raise SettingsError("No prompts to evaluate.", "name --tasks or give --prompts FILE")
    reference = [
        p.prompt
        for task in tasks.BUILTIN_TASKS
        for p in tasks.builtin_prompts(task)[:REFERENCE_PROMPTS_PER_TASK]
    ]
    embedder = _embedder(args.embedding)
    return plan.make_evaluation(
        spec,
        _load_settings(args),
        prompts,
        points,
        k=args.k,
        seed=0 if args.seed is None else args.seed,
        embedding=embedder.file,
        embedder=embedder.to_dict(),
        judge=None if args.judge == "aligned" else _embedding_path(args.judge),
        threshold=embedder.same_above if args.same_above is None else args.same_above,
        reference_texts=tuple(reference),
    )


def _for_the_pair(items: list[str], spec, explicit: bool) -> list[str]:
    """The ensemble baseline needs one vocabulary: on a cross-tokenizer pair it is left
    out of the default methods (and refused when asked for by name)."""
    from ..pairs.loading import spec_is_cross_tokenizer

    asked = [item for item in items if item.partition("@")[0] == "ensemble"]
    if not asked or not spec_is_cross_tokenizer(spec):
        return items
    if explicit:
        raise SettingsError(
            "The ensemble baseline needs one vocabulary; this pair's models have two.",
            "leave ensemble out of --methods (random is the nearest baseline)",
        )
    _say("note: ensemble is left out: it needs one vocabulary, this pair has two")
    return [item for item in items if item not in asked]


def _check_counts(args) -> None:
    checks = (
        (
            args.k >= 2,
            f"-k {args.k}: diversity needs at least two answers per prompt.",
            "use -k 2 or more (10 is usual)",
        ),
        (args.limit >= 0, f"--limit {args.limit} is negative.", "use 0 for all prompts"),
        (
            args.bootstrap == 0 or args.bootstrap >= 2,
            f"--bootstrap {args.bootstrap}: intervals need at least 2 resamples.",
            "use --bootstrap 1000 (or 0 for no intervals)",
        ),
        (args.judge_check >= 0, f"--judge-check {args.judge_check} is negative.", "use 0 to skip"),
        (
            args.same_above is None or -1 <= args.same_above <= 1,
            f"--same-above {args.same_above} is not a cosine similarity.",
            "use a value in [-1, 1], e.g. 0.8",
        ),
    )
    for ok, message, hint in checks:
        if not ok:
            raise SettingsError(message, hint)


def _pair_spec(args):
    """The pair to load, resolved now (each worker process loads it by itself)."""
    from ..backend import check_gguf_file
    from ..pairs.loading import IN_CONTEXT, PairSpec

    common.check_pair_options(args)
    if args.base is None:
        from ..models.catalog import resolve_pair_spec

        return resolve_pair_spec(
            args.pair, base_format=args.base_format, aligned_format=args.aligned_format
        )
    aligned = args.aligned or IN_CONTEXT
    if aligned != IN_CONTEXT:
        aligned = str(check_gguf_file(aligned))
    return PairSpec(
        str(check_gguf_file(args.base)),
        aligned,
        base_format=args.base_format,
        aligned_format=args.aligned_format,
    )


def _load_settings(args):
    base = common.load_settings_from(args)
    threads = common.worker_threads(args.threads, args.workers)
    # every pair option holds (--no-prompt-cache, --context-per-model); a unit's k
    # answers are decoded together unless --parallel says otherwise
    return dataclasses.replace(
        base, n_threads=threads, n_parallel=args.parallel or max(base.n_parallel, args.k)
    )


def _embedder(value: str | None):
    """The sentence embedder (default: the catalog's MiniLM, converted offline)."""
    from ..eval.embedder_choice import choose_embedder
    from ..models.embedders import DEFAULT_EMBEDDER

    return choose_embedder(value or DEFAULT_EMBEDDER)


def _embedding_path(path: str | None) -> str | None:
    if path is None:
        return None
    from ..backend import check_gguf_file

    return str(check_gguf_file(path))


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _numbers(text: str, option: str) -> list[float]:
    try:
        values = [float(t) for t in _split(text)]
    except ValueError:
        values = []
    if not values:
        raise SettingsError(f"Cannot read {option} {text!r}.", f"write numbers: {option} 0.3,0.5")
    return values


def _generate(todo, evaluation, store, args) -> None:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from ..eval.pool import run_units
    from ..executors import make_executor

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("answers"),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as progress:
        bar = progress.add_task("loading models", total=len(todo) * evaluation.k)
        run_units(
            todo,
            _config_for(evaluation.config, args),
            store,
            executor=make_executor(args.workers, args.ray, args.threads),
            progress=lambda n: progress.advance(bar, n),
            on_loaded=lambda: progress.update(bar, description="generating"),
            on_news=progress.console.print,
        )


def _config_for(config, args):
    """On Ray, the names a node looks the files up by (the paths here may not be
    theirs): the catalog pair and the catalog embedder, where those were named."""
    from dataclasses import replace

    from ..models.embedders import DEFAULT_EMBEDDER, load_embedders

    if args.ray is None:
        return config
    names = {}
    if args.base is None:
        names.update(
            pair=args.pair, base_format=args.base_format, aligned_format=args.aligned_format
        )
    if (args.embedding or DEFAULT_EMBEDDER) in load_embedders():
        names["embedder"] = args.embedding or DEFAULT_EMBEDDER
    return replace(config, names=names)


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")

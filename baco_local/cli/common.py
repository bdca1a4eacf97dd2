"""Options shared by the commands that load a pair and generate (run, eval, bench, chat)."""

from __future__ import annotations

import argparse

from ..core.routers import DEFAULT_ROUTER
from ..core.settings import GenerationSettings, LoadSettings  # noqa: F401 (LoadSettings re-exported)

_DEFAULTS = GenerationSettings()


def add_pair_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model pair")
    group.add_argument(
        "--pair", metavar="NAME", help="a pair from the catalog (`baco models list`)"
    )
    group.add_argument("--base", metavar="PATH", help="base (pre-trained) model GGUF file")
    group.add_argument(
        "--aligned",
        metavar="PATH",
        help="aligned (instruct) model GGUF file, or 'in-context' to align the base model "
        "with a preamble (default with --base alone)",
    )
    group.add_argument(
        "--base-format",
        metavar="FORMAT",
        help="prompt format for the base model (default: transcript; see `baco routers --formats`)",
    )
    group.add_argument(
        "--aligned-format",
        metavar="FORMAT",
        help="prompt format for the aligned model (default: the chat template in its GGUF)",
    )
    group.add_argument(
        "--ctx",
        type=int,
        default=LoadSettings.n_ctx,
        metavar="N",
        help="context size in tokens (default %(default)s)",
    )
    group.add_argument("--threads", type=int, metavar="N", help="CPU threads (default: all cores)")
    group.add_argument(
        "--gpu-layers",
        type=int,
        metavar="N",
        help="layers to offload to the GPU (default: all when the build has a GPU backend)",
    )
    group.add_argument(
        "--parallel",
        type=int,
        metavar="N",
        help=f"answers decoded together at most (-n, brainstorm, eval, and the requests "
        f"`baco serve` answers at once; default {LoadSettings.n_parallel})",
    )
    group.add_argument(
        "--no-prompt-cache",
        dest="prompt_cache",
        action="store_false",
        help="do not keep the in-context preamble's cache on disk between runs",
    )


def add_generation_options(parser: argparse.ArgumentParser, *, router: bool = True) -> None:
    group = parser.add_argument_group("routing and sampling")
    if router:
        group.add_argument(
            "--router",
            metavar="NAME",
            help="who writes each word (default: the pair's recommendation, else "
            f"{DEFAULT_ROUTER}; list them with `baco routers`)",
        )
        group.add_argument(
            "--gamma",
            type=float,
            metavar="G",
            help="the router's diversity dial (default: the router's own)",
        )
    group.add_argument(
        "--temperature",
        type=float,
        default=_DEFAULTS.temperature,
        metavar="T",
        help="0 is greedy (default %(default)s)",
    )
    group.add_argument(
        "--top-p",
        type=float,
        default=_DEFAULTS.top_p,
        metavar="P",
        help="nucleus sampling, 1 = off (default %(default)s)",
    )
    group.add_argument(
        "--top-k",
        type=int,
        default=_DEFAULTS.top_k,
        metavar="K",
        help="0 = off (default %(default)s)",
    )
    group.add_argument(
        "--min-p",
        type=float,
        default=_DEFAULTS.min_p,
        metavar="P",
        help="0 = off (default %(default)s)",
    )
    group.add_argument(
        "--max-tokens",
        type=int,
        default=_DEFAULTS.max_tokens,
        metavar="N",
        help="new tokens at most (default %(default)s)",
    )
    group.add_argument("--seed", type=int, metavar="S", help="fixed seed for a reproducible answer")
    group.add_argument(
        "--stop",
        action="append",
        default=[],
        metavar="TEXT",
        help="stop when this text appears (repeatable)",
    )
    group.add_argument(
        "--repeat-penalty",
        type=float,
        default=_DEFAULTS.repeat_penalty,
        metavar="R",
        help="make the answer's recent tokens less likely, 1 = off (default %(default)s)",
    )
    group.add_argument(
        "--repeat-last-n",
        type=int,
        default=_DEFAULTS.repeat_last_n,
        metavar="N",
        help="how many recent tokens the penalty looks back at (default %(default)s)",
    )
    group.add_argument(
        "--lead",
        type=int,
        default=_DEFAULTS.lead,
        metavar="N",
        help="the aligned model writes the first N tokens of each answer (default %(default)s)",
    )


def load_settings_from(args: argparse.Namespace) -> LoadSettings:
    return LoadSettings(
        n_ctx=args.ctx,
        n_threads=args.threads,
        n_gpu_layers=args.gpu_layers,
        verbose=getattr(args, "verbose", False),
        prompt_cache=getattr(args, "prompt_cache", True),
        n_parallel=getattr(args, "parallel", None) or LoadSettings.n_parallel,
    )


def generation_settings_from(args: argparse.Namespace, **overrides) -> GenerationSettings:
    fields = dict(
        router=getattr(args, "router", None) or DEFAULT_ROUTER,
        gamma=getattr(args, "gamma", None),
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        min_p=args.min_p,
        max_tokens=args.max_tokens,
        seed=args.seed,
        stop=tuple(args.stop),
        lead=args.lead,
        repeat_penalty=args.repeat_penalty,
        repeat_last_n=args.repeat_last_n,
    )
    fields.update(overrides)
    return GenerationSettings(**fields)


def check_pair_options(args: argparse.Namespace) -> None:
    """The pair options name one pair: --base (with --aligned), or --pair, or neither."""
    from ..errors import SettingsError

    if args.base is None and args.aligned is not None:
        raise SettingsError(
            "--aligned needs --base too.", "give both files, or a catalog pair with --pair NAME"
        )
    if args.base is not None and args.pair is not None:
        raise SettingsError("--pair and --base name two different pairs.", "use one of them")


def load_pair_from(args: argparse.Namespace):
    """Load the pair the options name: --base/--aligned files, --pair NAME, or the default."""
    from ..api import Pair

    check_pair_options(args)
    return Pair.load(
        args.pair,
        base=args.base,
        aligned=args.aligned,
        base_format=args.base_format,
        aligned_format=args.aligned_format,
        settings=load_settings_from(args),
    )


def settings_for_pair(args: argparse.Namespace, settings: GenerationSettings, pair):
    """Use the pair's recommended router (and its gamma) unless --router was given, and
    its recommended sampling for the sampling options left at their defaults."""
    if getattr(args, "router", None) is not None:
        return settings
    recommended = pair.default_settings
    gamma = args.gamma if getattr(args, "gamma", None) is not None else recommended.gamma
    sampling = {
        name: getattr(recommended, name)
        for name in ("temperature", "top_k", "top_p", "min_p")
        if getattr(args, name, None) == getattr(_DEFAULTS, name)
    }
    return settings.with_changes(router=recommended.router, gamma=gamma, **sampling)

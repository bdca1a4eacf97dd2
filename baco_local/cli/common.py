"""Options shared by the commands that load a pair and generate (run, eval, bench, chat)."""

from __future__ import annotations

import argparse

from ..core.settings import GenerationSettings, LoadSettings  # noqa: F401 (LoadSettings re-exported)
from ..core.settings_fields import generation_fields

ROUTING_FIELDS = ("router", "gamma")  # left out where a command picks the routers itself


def add_pair_options(parser: argparse.ArgumentParser, ctx_default: str | None = None) -> None:
    """The options that name and load a pair. ctx_default: what --ctx's help says when
    the command picks the context size itself (--ctx then defaults to None)."""
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
        default=LoadSettings.n_ctx if ctx_default is None else None,
        metavar="N",
        help=f"context size in tokens (default {ctx_default or LoadSettings.n_ctx})",
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
        "--context-per-model",
        dest="one_context",
        action="store_false",
        help="when both roles use one model file (the in-context partner), give each its "
        "own llama.cpp context instead of decoding both in one batch (slower; answers to a "
        "seed then differ in llama.cpp's rounding)",
    )
    group.add_argument(
        "--no-prompt-cache",
        dest="prompt_cache",
        action="store_false",
        help="do not keep the in-context preamble's cache on disk between runs",
    )


def add_generation_options(
    parser: argparse.ArgumentParser, *, router: bool = True, defaults: dict | None = None
) -> None:
    """One option per GenerationSettings field (--top-p for top_p), with the field's own
    help. Options left out stay None here, so that the pair's recommendations can fill
    them (settings_for_pair); `defaults` gives a command its own (eval's max_tokens)."""
    group = parser.add_argument_group(
        "routing and sampling",
        "options left out take the pair's recommendation (`baco models list`), else the "
        "default shown",
    )
    defaults = defaults or {}
    for setting in generation_fields():
        if not router and setting.name in ROUTING_FIELDS:
            continue
        default = defaults.get(setting.name, setting.default)
        shown = f" (default {default})" if default not in (None, ()) else ""
        group.add_argument(
            setting.option,
            dest=setting.name,
            type=setting.kind,
            choices=setting.choices,
            action="append" if setting.repeated else "store",
            default=defaults.get(setting.name),
            metavar=setting.metavar,
            help=(setting.help + shown).replace("%", "%%"),
        )


def generation_changes_from(args: argparse.Namespace) -> dict:
    """The GenerationSettings fields given on the command line (the rest were left out)."""
    changes = {}
    for setting in generation_fields():
        value = getattr(args, setting.name, None)
        if value is not None:
            changes[setting.name] = tuple(value) if setting.repeated else value
    return changes


def load_settings_from(args: argparse.Namespace) -> LoadSettings:
    return LoadSettings(
        n_ctx=args.ctx,
        n_threads=args.threads,
        n_gpu_layers=args.gpu_layers,
        verbose=getattr(args, "verbose", False),
        prompt_cache=getattr(args, "prompt_cache", True),
        one_context=getattr(args, "one_context", True),
        n_parallel=_given(getattr(args, "parallel", None), LoadSettings.n_parallel),
    )


def _given(value, default):
    """An option's value, or the default when it was left out (0 is a value: the
    settings' checks refuse it with a clear message)."""
    return default if value is None else value


def generation_settings_from(args: argparse.Namespace, **overrides) -> GenerationSettings:
    """The settings the options give on their own (to check them before a slow load)."""
    return GenerationSettings(**{**generation_changes_from(args), **overrides})


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


def settings_for_pair(args: argparse.Namespace, pair, **overrides) -> GenerationSettings:
    """The pair's recommended settings (Pair.default_settings: router, gamma, lead and
    sampler from the catalog) with the options given on the command line on top, exactly
    as the Python API applies `pair.generate(prompt, **changes)`."""
    return pair.default_settings.with_changes(**{**generation_changes_from(args), **overrides})


def settings_for_spec(args: argparse.Namespace, spec) -> GenerationSettings:
    """settings_for_pair before the pair loads: the PairSpec's recommended settings with
    the options given on the command line on top."""
    return spec.recommended_settings().with_changes(**generation_changes_from(args))


def worker_threads(threads: int | None, workers: int | None) -> int:
    """llama.cpp threads for each of `workers` processes on this machine: --threads, or
    the cores shared out."""
    import os

    return threads or max(1, (os.cpu_count() or 1) // (workers or 1))


def add_cluster_options(parser: argparse.ArgumentParser, verb: str) -> None:
    """--ray [ADDRESS] (and the help that says what each node needs)."""
    group = parser.add_argument_group("cluster")
    group.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help=f"{verb} on Ray actors, each loading the pair once on its node: alone, a local "
        "Ray instance; 'auto' joins the cluster `ray start` made here; ray://HOST:10001 a "
        "remote one (needs the cluster extra; every node needs baco-local and the model "
        "files, or a --pair name it pulls)",
    )


def check_cluster_options(args: argparse.Namespace) -> None:
    from ..errors import SettingsError

    workers = getattr(args, "workers", None)
    if workers is not None and workers < 1:
        raise SettingsError(f"--workers {workers} is below 1.", "use --workers 1 or more")
    if args.ray is not None:
        from ..executors.ray_actors import import_ray

        import_ray(args.ray)  # a clear error now, before anything slow, when Ray is missing
        for option in ("base", "aligned", "judge", "embedding"):
            path = getattr(args, option, None)
            if _relative_path(path):
                raise SettingsError(
                    f"--{option} {path} is a relative path; Ray nodes would look for it in "
                    "their own working folders.",
                    "give absolute paths (on storage every node sees), or catalog names",
                )


def _relative_path(value: str | None) -> bool:
    """A file given by a relative path (not a name such as "in-context" or "aligned")."""
    import os

    if value is None or os.path.isabs(value):
        return False
    return "/" in value or value.endswith(".gguf") or os.path.exists(value)


def recommended_spec_from(args: argparse.Namespace):
    """The PairSpec the pair options name, for its recommended settings, without loading
    or pulling anything (the workers that load the pair may be other machines)."""
    from ..pairs.loading import IN_CONTEXT, PairSpec

    check_pair_options(args)
    if args.base is not None:
        return PairSpec(args.base, args.aligned or IN_CONTEXT)
    from ..models.catalog import recommended_spec

    return recommended_spec(args.pair)

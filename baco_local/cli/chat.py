"""`baco chat` (and plain `baco`): the terminal app for chat, brainstorm and compare."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import common

DEFAULT_ANSWERS = 5


def register(commands) -> None:
    parser = commands.add_parser(
        "chat",
        help="open the terminal app: chat, brainstorm, compare (the default command)",
        description="Chat, brainstorm and compare in the terminal, with every word coloured "
        "by the model that wrote it. The app opens at once; the pair loads in the background. "
        "What you change in the app (router, gamma, the settings panel) is remembered for "
        "the next run; options given here hold for this run only, on top of it.",
    )
    common.add_pair_options(parser)
    common.add_generation_options(parser)
    app = parser.add_argument_group("app")
    app.add_argument("--system", metavar="TEXT", help="system prompt")
    app.add_argument(
        "--answers",
        type=int,
        metavar="N",
        help=f"answers per brainstorm prompt (default {DEFAULT_ANSWERS}, or the count you "
        "set in the app last time)",
    )
    app.add_argument(
        "--forget",
        action="store_true",
        help="start from the pair's settings: forget what the app remembered from earlier "
        "runs (it remembers your changes from now on)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import BacoError, SettingsError

    # Everything that can be checked without loading models is checked before the app opens.
    settings = common.generation_settings_from(args)
    load_settings = common.load_settings_from(args)
    common.check_pair_options(args)
    if args.answers is not None and not 2 <= args.answers <= 20:
        raise SettingsError(
            f"--answers {args.answers} is out of range.", "use a count from 2 to 20"
        )
    from tui import preferences
    from tui.app import BacoApp

    path = preferences.default_path()
    remembered, problem = preferences.Remembered(), None
    if not args.forget:
        remembered, problem = preferences.load(path)
    chosen = preferences.on_top(remembered.settings, common.generation_changes_from(args))
    try:  # the status line shows the pair's own router and gamma while it loads
        shown = common.recommended_spec_from(args).recommended_settings().with_changes(**chosen)
    except BacoError:  # the load says what is wrong (a gamma out of this router's range)
        shown = settings
    app = BacoApp(
        lambda: common.load_pair_from(args),
        pair_name=_pair_name(args),
        settings=shown,
        system=args.system,
        load_settings=load_settings,
        brainstorm_n=args.answers or remembered.brainstorm_n or DEFAULT_ANSWERS,
        follow_pair=True,
        chosen=chosen,
        remember=path,
        remembered=remembered,
        notes=(problem,) if problem else (),
    )
    try:
        app.run()
    finally:
        app.close_pair()
    return app.return_code or 0


def _pair_name(args: argparse.Namespace) -> str:
    if args.pair:
        return args.pair
    if args.base:
        return Path(args.base).name
    try:
        from ..models.catalog import default_pair_name

        return default_pair_name()
    except ImportError:
        return "the default pair"

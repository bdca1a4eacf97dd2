"""The `baco` command line: one module per command, each with a `register(subparsers)`.

Errors a user can fix print one message and a hint and exit 2; Ctrl-C exits 130;
anything else is a bug: one line, and the traceback only with --verbose.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import BacoError

# Command modules, in the order `baco --help` lists them. Importing one must be cheap:
# heavy imports (llama_cpp, textual, matplotlib) happen inside the handlers.
COMMANDS = ("run", "batch", "chat", "serve", "models", "routers", "eval", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="baco",
        description="Base-aligned model collaboration on local GGUF models: an aligned model "
        "for quality, its base model for diversity, one router deciding token by token.",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show llama.cpp's log and full tracebacks",
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(commands)
    for sub in commands.choices.values():  # `baco run ... -v` works as well as `baco -v run`
        sub.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS,
            help="show llama.cpp's log and full tracebacks",
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if not any(a in COMMANDS for a in argv) and not any(
        a in ("-h", "--help", "--version") for a in argv
    ):
        # plain `baco` opens the terminal app: `baco --answers 3` is `baco chat --answers 3`
        globals_ = [a for a in argv if a in ("-v", "--verbose")]
        rest = [a for a in argv if a not in globals_]
        if rest and not rest[0].startswith("-"):  # `baco rn`: not a chat option either
            _unknown_command(parser, rest[0])
        argv = [*globals_, "chat", *rest]
    args, extra = parser.parse_known_args(argv)
    if extra:  # said by the command's own parser, with its own usage line
        command = getattr(args, "command", None)
        subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        (subparsers.choices.get(command) or parser).error(
            f"unrecognized arguments: {' '.join(extra)}"
        )
    try:
        return int(args.handler(args) or 0)
    except BacoError as error:
        _print_error(str(error))
        if args.verbose:
            raise
        return error.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted\n")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as error:  # a bug: say so in one line unless asked for more
        if args.verbose:
            raise
        _print_error(
            f"unexpected {type(error).__name__}: {error}\n"
            "  hint: run again with --verbose for the traceback, and please report it"
        )
        return 1


def _unknown_command(parser: argparse.ArgumentParser, word: str) -> None:
    """Exit 2 naming the commands, and the likeliest one, for a mistyped command."""
    import difflib

    close = difflib.get_close_matches(word, COMMANDS, n=1)
    guess = f" Did you mean '{close[0]}'?" if close else ""
    parser.error(f"unknown command {word!r}.{guess} Commands: {', '.join(COMMANDS)}")


def _print_error(message: str) -> None:
    sys.stderr.write(f"baco: error: {message}\n")


def _version() -> str:
    from .. import __version__

    return f"baco-local {__version__}"

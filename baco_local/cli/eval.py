"""`baco eval`: not built yet."""

from __future__ import annotations


def register(commands) -> None:
    parser = commands.add_parser("eval", help="(not built yet)")
    parser.set_defaults(handler=lambda args: _missing())


def _missing() -> int:
    from ..errors import BacoError

    raise BacoError("`baco eval` is not built yet.", "see the README for what works today")

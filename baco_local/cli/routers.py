"""`baco routers`: the routers, what gamma means for each, and the prompt formats."""

from __future__ import annotations

import json
import sys


def register(commands) -> None:
    parser = commands.add_parser(
        "routers",
        help="list the routers and their gamma dial",
        description="Routers decide, at each word, which model writes it.",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable list")
    parser.add_argument("--formats", action="store_true", help="list the prompt formats instead")
    parser.set_defaults(handler=show)


def show(args) -> int:
    from ..core.routers import DEFAULT_ROUTER, ROUTERS
    from ..pairs.prompt_formats import format_names

    if args.formats:
        rows = [{"name": n, "description": d} for n, d in format_names()]
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            for row in rows:
                print(f"{row['name']:<12} {row['description']}")
        return 0
    rows = [
        {
            "name": spec.name,
            "description": spec.description,
            "gamma": spec.gamma_meaning,
            "gamma_default": spec.gamma_default,
            "gamma_range": list(spec.gamma_range) if spec.gamma_range else None,
            "default": spec.name == DEFAULT_ROUTER,
        }
        for spec in ROUTERS.values()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        mark = " (default)" if row["default"] else ""
        print(f"{row['name']:<8} {row['description']}{mark}")
        if row["gamma"]:
            low, high = row["gamma_range"]
            print(f"{'':<8} gamma {row['gamma_default']:g} in [{low:g}, {high:g}]: {row['gamma']}")
    sys.stdout.write(
        "\nRouters decide only where a word starts; a word begun by one model is finished by it.\n"
        "All routers read the base model's next-token distribution (top-1 probability, entropy,\n"
        "and the role of its top-1 token: punctuation, function word or content word).\n"
    )
    return 0

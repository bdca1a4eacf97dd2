"""`baco models`: list the catalog, pull pairs, show their files, add and remove your own."""

from __future__ import annotations

import json
import sys


def register(commands) -> None:
    parser = commands.add_parser(
        "models",
        help="list, download and add model pairs",
        description="Base/aligned model pairs: the built-in catalog (models.toml) and yours.",
    )
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION")
    parser.set_defaults(handler=lambda args: show_list(args))
    parser.set_defaults(json=False)

    listing = sub.add_parser("list", help="the pairs, their sizes, and which are downloaded")
    listing.add_argument("--json", action="store_true", help="machine-readable list")
    listing.set_defaults(handler=show_list)

    pull = sub.add_parser(
        "pull", help="download a pair (or an embedder) into the cache, checked by size and sha256"
    )
    pull.add_argument("name", nargs="?", help="pair or embedder name (default: the default pair)")
    pull.add_argument(
        "--accept-new",
        action="store_true",
        help="when the publisher replaced a file (its sha256 no longer matches the catalog), "
        "take the file the hub serves now and record its checksum and commit in your "
        "catalog (pairs only)",
    )
    pull.set_defaults(handler=pull_pair)

    path = sub.add_parser(
        "path", help="print the pair's two file paths (base, then aligned), or an embedder's"
    )
    path.add_argument("name", nargs="?", help="pair or embedder name (default: the default pair)")
    path.set_defaults(handler=show_paths)

    add = sub.add_parser(
        "add",
        help="add a pair of local files or hub files to your catalog",
        description="Add a pair to your catalog after checking that both models share one "
        "vocabulary. Files: local paths, or hub files as ORG/REPO/FILE.gguf or "
        "hf://ORG/REPO[@REVISION]/FILE.gguf (downloaded for the check).",
    )
    add.add_argument("name", help="a name for the pair")
    add.add_argument("--base", required=True, metavar="FILE", help="base (pre-trained) model")
    add.add_argument(
        "--aligned",
        required=True,
        metavar="FILE",
        help="aligned (instruct) model, or 'in-context' to align the base model in context",
    )
    add.add_argument("--description", metavar="TEXT", help="one line for `baco models list`")
    add.add_argument("--router", metavar="NAME", help="recommended router (`baco routers`)")
    add.add_argument("--gamma", type=float, metavar="G", help="recommended gamma")
    add.add_argument("--base-format", metavar="FORMAT", help="prompt format for the base model")
    add.add_argument(
        "--aligned-format", metavar="FORMAT", help="prompt format for the aligned model"
    )
    add.add_argument(
        "--force",
        action="store_true",
        help="replace a pair of the same name (yours, or a built-in one, which yours overrides)",
    )
    add.add_argument(
        "--no-check",
        action="store_true",
        help="save without downloading hub files or comparing vocabularies (checked at load)",
    )
    add.set_defaults(handler=add_pair)

    remove = sub.add_parser("rm", help="remove a pair you added, or a pair's downloaded files")
    remove.add_argument("name", help="pair name")
    remove.add_argument(
        "--files",
        action="store_true",
        help="also delete its downloaded files (files you gave by path are never deleted)",
    )
    remove.set_defaults(handler=remove_pair)


def _pair_row(pair, status, default: str) -> dict:
    from dataclasses import asdict

    def entry(model, path):
        if model is None:
            return "in-context"
        return {**asdict(model), "local_path": str(path) if path else None}

    return {
        "name": pair.name,
        "default": pair.name == default,
        "description": pair.description,
        "origin": pair.origin,
        "label": status.label,
        "downloaded": status.downloaded,
        "runs_offline": status.runs_offline,
        "size_bytes": pair.size_bytes or _size_on_disk(status),
        "size_exact": all(model.size_exact for _, model in pair.entries()),
        "packaged": any(model.package for _, model in pair.entries()),
        "missing_bytes": status.missing_bytes,
        "partial_bytes": status.partial_bytes,
        "note": status.note,
        "router": pair.router,
        "gamma": pair.gamma,
        "base": entry(pair.base, status.base_path),
        "aligned": entry(pair.aligned, status.aligned_path),
        "confirmed": all(model.confirmed for _, model in pair.entries()),
    }


def _size_on_disk(status) -> int | None:
    """Both files' sizes as they are here (packaged files have no size in the catalog)."""
    paths = [p for p in (status.base_path, status.aligned_path) if p is not None]
    try:
        return sum(p.stat().st_size for p in paths) if paths and status.downloaded else None
    except OSError:
        return None


def show_list(args) -> int:
    from ..models.catalog import default_pair_name, load_catalog, pair_status

    default = default_pair_name()
    rows = [_pair_row(p, pair_status(p), default) for p in load_catalog().values()]
    embedders = _embedder_rows()
    if getattr(args, "json", False):
        print(json.dumps({"default": default, "pairs": rows, "embedders": embedders}, indent=2))
        return 0
    _print_table(rows)
    _print_embedders(embedders)
    return 0


def _embedder_rows() -> list[dict]:
    """Sentence embedders for `baco eval`: where each is here, or how to get it (no
    conversion, no hashing: `path` or an eval does that)."""
    from dataclasses import asdict

    from ..models.catalog import entry_path
    from ..models.embedders import DEFAULT_EMBEDDER, load_embedders
    from ..models.packaged import package_installed

    rows = []
    for embedder in load_embedders().values():
        packaged = bool(embedder.package) and package_installed(embedder.package)
        pulled = embedder.hub is not None and entry_path(embedder.hub) is not None
        rows.append(
            {
                **asdict(embedder),
                "default": embedder.name == DEFAULT_EMBEDDER,
                "state": "offline-ready" if packaged else "downloaded" if pulled else "-",
            }
        )
    return rows


def _print_embedders(rows: list[dict]) -> None:
    if not rows:
        return
    width = max(len(row["name"]) for row in rows) + 2
    print(f"\n  {'EMBEDDER':<{width}}{'STATE':<15}DESCRIPTION")
    for row in rows:
        mark = "*" if row["default"] else " "
        print(f"{mark} {row['name']:<{width}}{row['state']:<15}{row['description']}")
    print(
        "\n* baco eval's default embedder (--embedding NAME); baco models pull NAME gets its GGUF."
    )


def _print_table(rows: list[dict]) -> None:
    from ..models.storage import format_size

    width = max(len(row["name"]) for row in rows) + 2
    licenses_of = {
        row["name"]: ", ".join(
            sorted(
                {m["license"] for m in (row["base"], row["aligned"]) if isinstance(m, dict)}
                - {None}
            )
        )
        or "?"
        for row in rows
    }
    lw = max(12, max(len(text) for text in licenses_of.values()) + 2)
    print(f"  {'NAME':<{width}}{'SIZE':>9}  {'STATE':<15}{'LICENSE':<{lw}}DESCRIPTION")
    for row in rows:
        mark = "*" if row["default"] else " "
        size = format_size(row["size_bytes"]) if row["size_bytes"] else "?"
        size = size if row["size_exact"] else f"~{size}"
        state = "downloaded" if row["downloaded"] else _partial_state(row)
        offline = row["runs_offline"] and (not row["downloaded"] or row["packaged"])
        state = "offline-ready" if offline else state
        extra = "" if row["confirmed"] else " [file names not confirmed]"
        origin = " [yours]" if row["origin"] == "user" else ""
        print(
            f"{mark} {row['name']:<{width}}{size:>9}  {state:<15}"
            f"{licenses_of[row['name']]:<{lw}}{row['description']}{origin}{extra}"
        )
        if row["runs_offline"] and not row["downloaded"]:
            print(f"  {'':<{width}}{'':>9}  {'':<15}{'':<{lw}}now: {row['label']}")
    print(
        "\n* default pair.  baco models pull NAME downloads a pair; baco run --pair NAME uses it."
    )


def _partial_state(row: dict) -> str:
    """The state of a pair a stopped pull left half-done ("partial 40%"), else "-"."""
    if not row["partial_bytes"]:
        return "-"
    if not row["size_bytes"]:
        return "partial"
    done = row["size_bytes"] - row["missing_bytes"]
    return f"partial {min(int(100 * done / row['size_bytes']), 99)}%"


def pull_pair(args) -> int:
    from ..models.catalog import default_pair_name, get_pair, pair_status, pull_pair
    from ..models.downloads import stderr_progress

    if _is_embedder(args.name):
        from ..models.embedders import pull_embedder

        print(pull_embedder(args.name, stderr_progress()))
        return 0
    name = args.name or default_pair_name()
    try:
        spec = pull_pair(name, stderr_progress(), accept_new=args.accept_new)
    except KeyboardInterrupt:
        sys.stderr.write(
            f"\nstopped: what was downloaded is kept; `baco models pull {name}` continues\n"
        )
        raise
    status = pair_status(get_pair(name))
    sys.stderr.write(f"{status.label}: ready\n")
    print(spec.base)
    print(spec.aligned)
    return 0


def show_paths(args) -> int:
    """The files the pair loads now: downloaded ones, or the offline demo weights."""
    from ..errors import BacoError
    from ..models.catalog import default_pair_name, get_pair, pair_status, resolve_pair_spec

    if _is_embedder(args.name):
        from ..models.embedders import embedder_file

        print(embedder_file(args.name))  # converts the packaged model on first use
        return 0
    pair = get_pair(args.name or default_pair_name())
    status = pair_status(pair)
    if not status.runs_offline:
        raise BacoError(f"{pair.name}: {status.note}.", f"run `baco models pull {pair.name}`")
    spec = resolve_pair_spec(pair.name, pull=False)
    if not status.downloaded:  # the demo weights stand in: say so, off stdout
        sys.stderr.write(f"{status.label}: {status.note}\n")
    print(spec.base)
    print(spec.aligned)
    return 0


def _is_embedder(name: str | None) -> bool:
    from ..models.catalog import load_catalog
    from ..models.embedders import load_embedders

    return bool(name) and name in load_embedders() and name not in load_catalog()


def add_pair(args) -> int:
    from ..models.catalog import add_user_pair, pair_status
    from ..models.catalog_file import user_catalog_path
    from ..models.downloads import stderr_progress

    pair = add_user_pair(
        args.name,
        args.base,
        args.aligned,
        description=args.description,
        router=args.router,
        gamma=args.gamma,
        base_format=args.base_format,
        aligned_format=args.aligned_format,
        check=not args.no_check,
        progress=stderr_progress(),
        force=args.force,
    )
    if not pair.aligned:
        checked = "the base model loads"
    elif pair.cross_tokenizer:
        checked = "two vocabularies: the models take turns word by word"
    else:
        checked = "vocabularies match"
    checked = "saved unchecked" if args.no_check else checked
    print(f"added {pair_status(pair).label} to {user_catalog_path()} ({checked})")
    return 0


def remove_pair(args) -> int:
    from ..models.catalog import get_pair, remove_pair_files, remove_user_pair

    pair = get_pair(args.name)
    if args.files:
        removed = remove_pair_files(pair.name)
        for path in removed:
            print(f"deleted {path}")
        if not removed:
            print(f"{pair.name}: no downloaded files to delete")
    if pair.origin == "user":
        remove_user_pair(pair.name)
        print(f"removed {pair.name} from your catalog")
    elif not args.files:
        remove_user_pair(pair.name)  # raises: built-in pairs cannot be removed
    return 0

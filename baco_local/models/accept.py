"""Accepting a file its publisher replaced: `baco models pull NAME --accept-new`.

A catalog entry's sha256 names the bytes checked when the entry was written. When the
publisher re-uploads the file, the hub serves other bytes under the same name and a pull
refuses them. Accepting the new file writes the checksum, exact size and commit the hub
serves now into the user catalog (<config dir>/models.toml), as that pair's entry for the
role: the pull then fetches and checks those bytes, pinned to that commit, and every
later load checks them too. The built-in catalog is never edited.
"""

from __future__ import annotations

import copy
import dataclasses
import sys

from .catalog_file import read_toml, user_catalog_path
from .downloads import published_file


def accept_published(pair, role: str, entry, catalog_data, builtin_path):
    """The entry with the hub's current file when its publisher replaced it (recorded in
    the user catalog), else the entry unchanged. `pair` is a CatalogPair, `entry` its
    ModelEntry for `role`, `catalog_data` the CatalogData it was read from, and
    `builtin_path` the built-in catalog's file."""
    if entry.repo is None or entry.sha256 is None:
        return entry
    remote = published_file(entry.repo, entry.file, f"baco models pull {pair.name} --accept-new")
    if remote.sha256 is None or remote.sha256 == entry.sha256.lower():
        return entry
    changes = {"sha256": remote.sha256, "size_bytes": remote.size, "revision": remote.commit}
    _record(pair.name, role, changes, catalog_data, builtin_path)
    sys.stderr.write(
        f"accepted the publisher's new {entry.file}: sha256 {remote.sha256}, commit "
        f"{remote.commit[:12]} (was sha256 {entry.sha256}); recorded in {user_catalog_path()}\n"
    )
    return dataclasses.replace(entry, **changes, size_exact=True)


def _record(name: str, role: str, changes: dict, catalog_data, builtin_path) -> None:
    """Write the role's whole entry with `changes` into the user catalog: a user table
    replaces the built-in one field by field at the pair level, so it must be complete."""
    from .user_catalog import write_user_catalog

    data = copy.deepcopy(catalog_data.user_raw)
    table = data.setdefault("pairs", {}).setdefault(name, {})
    current = table.get(role)
    if not isinstance(current, dict):
        builtin, _ = read_toml(builtin_path, required=True)
        current = builtin["pairs"][name][role]
    entry = {k: v for k, v in current.items() if k != "size_mb"}  # the size is exact now
    table[role] = {**entry, **changes}
    write_user_catalog(data)

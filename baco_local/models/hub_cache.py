"""Baco's view of huggingface_hub's cache layout, and the partial downloads in it.

A file of repository org/name lives in `<hub cache>/models--org--name/`:
`blobs/<etag>` holds the bytes, `snapshots/<commit>/<file>` links to it, and
`refs/<revision>` names the commit (huggingface_hub's layout, so `hf cache` tools and
`try_to_load_from_cache` see baco's downloads). A download in progress, or stopped, is
`blobs/<etag>.incomplete` (the name `hf cache scan` reports as an incomplete download
and `hf cache prune` cleans up) with a sidecar `blobs/<etag>.incomplete.json` naming the
repository, file, revision, commit and size the bytes belong to. The etag names the
content (the sha256 for LFS and Xet files), so bytes are only ever continued with bytes
of the same version of the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from ..files import write_atomic
from .storage import hub_cache_dir

SYNC_EVERY_BYTES = 64 << 20  # fsync this often, so that a power cut loses little
_HASH_BLOCK = 16 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class RemoteFile:
    """One version of one file on the hub, as its HEAD request describes it."""

    repo: str
    file: str
    revision: str  # what was asked for ("main", a tag or a commit)
    commit: str  # what it resolved to
    etag: str
    size: int
    url: str  # the resolve address pinned to `commit`: a resume gets the same bytes

    @property
    def sha256(self) -> str | None:
        """The file's sha256 when the etag is one (LFS and Xet files), else None."""
        etag = self.etag.lower()
        return etag if _SHA256.fullmatch(etag) else None


@dataclass(frozen=True)
class PartialDownload:
    """The bytes of a stopped download, kept on disk for the next pull."""

    path: Path
    done_bytes: int
    total_bytes: int
    etag: str
    revision: str


@dataclass(frozen=True)
class CacheSlot:
    """Where one version of one file lives in huggingface_hub's cache layout."""

    storage: Path  # <hub cache>/models--org--name
    remote: RemoteFile

    @property
    def blob(self) -> Path:
        return self.storage / "blobs" / self.remote.etag

    @property
    def partial(self) -> Path:
        return self.storage / "blobs" / f"{self.remote.etag}.incomplete"

    @property
    def sidecar(self) -> Path:
        return self.storage / "blobs" / f"{self.remote.etag}.incomplete.json"

    @property
    def pointer(self) -> Path:
        return self.storage / "snapshots" / self.remote.commit / self.remote.file

    @property
    def lock(self) -> Path:  # the lock huggingface_hub takes for this blob too
        return self.storage.parent / ".locks" / self.storage.name / f"{self.remote.etag}.lock"


def repo_storage(hub_dir: Path, repo: str) -> Path:
    from huggingface_hub.file_download import repo_folder_name

    return Path(hub_dir) / repo_folder_name(repo_id=repo, repo_type="model")


# --- partial downloads --------------------------------------------------------------


def partial_downloads(hub_dir: Path, repo: str, file: str) -> list[PartialDownload]:
    """Stopped downloads of repo/file in the cache (any version), found without network."""
    blobs = repo_storage(hub_dir, repo) / "blobs"
    found = []
    for sidecar in sorted(blobs.glob("*.incomplete.json")) if blobs.is_dir() else []:
        record = _read_sidecar(sidecar)
        partial = sidecar.with_suffix("")  # blobs/<etag>.incomplete
        if record is None or (record["repo"], record["file"]) != (repo, file):
            continue
        try:
            done = partial.stat().st_size
        except OSError:
            continue
        found.append(
            PartialDownload(partial, done, record["size"], record["etag"], record["revision"])
        )
    return found


def partial_download(repo: str, file: str, revision: str | None = None):
    """The stopped download of repo/file at this revision in baco's cache, or None."""
    wanted = revision or "main"
    found = [p for p in partial_downloads(hub_cache_dir(), repo, file) if p.revision == wanted]
    return max(found, key=lambda p: p.done_bytes, default=None)


def partial_bytes(repo: str, file: str, revision: str | None = None) -> int:
    """Bytes of repo/file already downloaded by a stopped pull (0 when none)."""
    found = partial_download(repo, file, revision)
    return found.done_bytes if found else 0


def discard_partial_downloads(repo: str, file: str) -> list[Path]:
    """Delete every stopped download of repo/file (any version) in baco's cache."""
    found = partial_downloads(hub_cache_dir(), repo, file)
    for partial in found:
        discard_partial(partial.path)
    return [partial.path for partial in found]


def discard_partial(partial: Path) -> None:
    """Delete a partial download and its sidecar."""
    partial.unlink(missing_ok=True)
    partial.with_name(partial.name + ".json").unlink(missing_ok=True)


def _read_sidecar(path: Path) -> dict | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(record, dict) and {"repo", "file", "revision", "etag", "size"} <= set(record):
            return record
    except (OSError, ValueError, TypeError):
        pass
    return None


def _sidecar_record(remote: RemoteFile) -> dict:
    return {
        "repo": remote.repo,
        "file": remote.file,
        "revision": remote.revision,
        "commit": remote.commit,
        "etag": remote.etag,
        "size": remote.size,
    }


class PartialFile:
    """The bytes of one remote file received so far: appended on disk, hashed as they come.

    Opening continues what is on disk when its sidecar names this very content (etag and
    size) and discards it otherwise.
    """

    def __init__(self, slot: CacheSlot):
        self.slot = slot
        if not self._continues(slot):
            slot.partial.unlink(missing_ok=True)
        write_atomic(slot.sidecar, json.dumps(_sidecar_record(slot.remote)) + "\n")
        self._digest = hashlib.sha256()
        self.size = self._hash_existing(slot.partial)
        # unbuffered: every chunk reaches the OS at once, so a killed process keeps it
        self._file = open(slot.partial, "ab", buffering=0)  # noqa: SIM115 (closed by close())
        self._unsynced = 0

    @staticmethod
    def _continues(slot: CacheSlot) -> bool:
        record = _read_sidecar(slot.sidecar)
        wanted = _sidecar_record(slot.remote)
        same = record is not None and all(
            record[key] == wanted[key] for key in ("repo", "file", "etag", "size")
        )
        return same and slot.partial.is_file() and slot.partial.stat().st_size <= slot.remote.size

    def _hash_existing(self, path: Path) -> int:
        if not path.is_file():
            return 0
        with path.open("rb") as f:
            while block := f.read(_HASH_BLOCK):
                self._digest.update(block)
            return f.tell()

    def append(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            view = view[self._file.write(view) :]
        self._digest.update(chunk)
        self.size += len(chunk)
        self._unsynced += len(chunk)
        if self._unsynced >= SYNC_EVERY_BYTES:
            self.sync()

    def restart(self) -> None:
        """Throw away the bytes so far: the next append writes byte 0."""
        self._file.truncate(0)  # the file is in append mode: writes follow the new end
        self._digest = hashlib.sha256()
        self.size = 0

    def sync(self) -> None:
        os.fsync(self._file.fileno())
        self._unsynced = 0

    def close(self) -> None:
        if not self._file.closed:
            try:
                self.sync()
            finally:
                self._file.close()

    def discard(self) -> None:
        with suppress(OSError):
            self.close()
        discard_partial(self.slot.partial)

    def hexdigest(self) -> str:
        return self._digest.hexdigest()

"""Resumable download of one hub file into huggingface_hub's cache layout.

huggingface_hub resolves the file: the resolve URL (HF_ENDPOINT), the HEAD request with
its redirects and auth headers, the commit, etag and size, the offline switch and its
typed errors. This module moves the bytes itself, because huggingface_hub 2.4 deletes a
partial download when a call fails: after Ctrl-C or a crash a pull could only restart.

Bytes are appended to the file's partial download (see hub_cache.py); each request asks
for the rest with `Range: bytes=<bytes on disk>-`, and a server that answers 200 instead
of 206 makes the file start over. Once complete and matching its sha256, the file is
renamed to `blobs/<etag>` and linked from `snapshots/<commit>/<file>`, where
hf_hub_download would have put it. Two pulls of one file at once: the second waits on
the file's lock (huggingface_hub's own) while the first brings bytes, then finds the
finished, checked file; if the first stopped, the second continues its bytes.
"""

from __future__ import annotations

import inspect
import os
import re
import time
from contextlib import ExitStack
from pathlib import Path

from ..files import write_atomic
from .hub_cache import (
    CacheSlot,
    PartialFile,
    RemoteFile,
    discard_partial,
    partial_downloads,
    repo_storage,
)
from .storage import (
    ChecksumError,
    DownloadError,
    Progress,
    check_free_space,
    format_size,
    is_transport_error,
    mark_verified,
)

CHUNK_BYTES = 1 << 20  # bytes per read and write: the most a crash can lose
RETRY_WAITS_S = (1.0, 2.0, 4.0, 8.0, 8.0)  # waits before retries that follow no progress
LOCK_WAIT_S = 60.0  # another process downloading the file: wait while it makes progress,
LOCK_POLL_S = 0.5  # looking this often; give up when it brought nothing for LOCK_WAIT_S
_RETRY_STATUSES = (408, 429, 500, 502, 503, 504)  # huggingface_hub waits and asks again
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


# --- asking the hub ------------------------------------------------------------------


def resolve_remote_file(repo: str, file: str, revision: str | None, endpoint: str | None):
    """HEAD the file through huggingface_hub: commit, etag, size, pinned address."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    url = hf_hub_url(repo, file, revision=revision, endpoint=endpoint)
    # wait out a busy hub (429, 5xx) where huggingface_hub can (2.x; 1.x fails at once)
    retry = "retry_on_errors" in inspect.signature(get_hf_file_metadata).parameters
    meta = get_hf_file_metadata(
        url, endpoint=endpoint, **({"retry_on_errors": True} if retry else {})
    )
    if not meta.commit_hash or not meta.etag or meta.size is None:
        missing = "X-Repo-Commit" if not meta.commit_hash else "ETag" if not meta.etag else "size"
        raise DownloadError(
            f"{url} answered without a {missing}: it does not look like a Hugging Face hub.",
            "check HF_ENDPOINT (unset it for the public hub) and your proxy settings",
        )
    pinned = hf_hub_url(repo, file, revision=meta.commit_hash, endpoint=endpoint)
    return RemoteFile(
        repo, file, revision or "main", meta.commit_hash, meta.etag, meta.size, pinned
    )


# --- moving the bytes -----------------------------------------------------------------


def fetch_into_cache(
    remote: RemoteFile,
    hub_dir: Path,
    *,
    sha256: str | None,
    progress: Progress | None,
    retry_command: str,
) -> Path:
    """Put the remote file in the cache, continuing a partial download; return its path.

    sha256: what the complete file must hash to (None: only its size is checked). A
    mismatch removes the download and raises ChecksumError. The partial file survives
    every other way out: errors, KeyboardInterrupt, a killed process.
    """
    slot = CacheSlot(repo_storage(hub_dir, remote.repo), remote)
    for folder in (slot.blob.parent, slot.pointer.parent, slot.lock.parent):
        folder.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        _lock(stack, slot, progress or _silent, retry_command)
        digest = None
        if not slot.blob.is_file():
            for other in partial_downloads(hub_dir, remote.repo, remote.file):
                if other.etag != remote.etag:  # another version of the file: useless now
                    discard_partial(other.path)
            digest = _download_blob(slot, sha256, progress or _silent, retry_command)
        _link(slot)
        slot.sidecar.unlink(missing_ok=True)  # left behind if stopped right after the rename
    if remote.revision != remote.commit:
        write_atomic(slot.storage / "refs" / remote.revision, remote.commit)
    if digest is not None and sha256 is not None:
        mark_verified(slot.pointer, digest)
    return slot.pointer


def _silent(filename: str, done: int, total: int) -> None:
    pass


def _lock(stack: ExitStack, slot: CacheSlot, progress: Progress, retry_command: str) -> None:
    """Take the blob's lock (shared with huggingface_hub). While another process holds it,
    wait, showing that process's bytes as they arrive; give up only when it has brought
    nothing for LOCK_WAIT_S. Then this process finds the finished file, or continues it."""
    from filelock import Timeout
    from huggingface_hub.utils import WeakFileLock

    remote = slot.remote
    seen, since = -1, time.monotonic()
    while True:
        try:
            stack.enter_context(WeakFileLock(slot.lock, timeout=LOCK_POLL_S))
            return
        except Timeout:
            done = _bytes_here(slot)
            if done != seen:
                seen, since = done, time.monotonic()
                progress(remote.file, done, remote.size)
            elif time.monotonic() - since >= LOCK_WAIT_S:
                raise DownloadError(
                    f"Another process is downloading {remote.repo}/{remote.file} right now "
                    f"(it holds {slot.lock}) and has brought nothing for {LOCK_WAIT_S:.0f} s.",
                    f"wait for it to finish, or stop it, then run `{retry_command}` again",
                ) from None


def _bytes_here(slot: CacheSlot) -> int:
    """Bytes of the file on disk: all of it once finished, else its partial download."""
    for path in (slot.blob, slot.partial):
        try:
            return path.stat().st_size
        except OSError:
            continue
    return 0


def _download_blob(slot: CacheSlot, sha256, progress: Progress, retry_command: str) -> str:
    """Complete blobs/<etag>.incomplete, check it, rename it to blobs/<etag>; its sha256."""
    remote = slot.remote
    partial = PartialFile(slot)
    try:
        check_free_space(remote.size - partial.size, slot.storage)
        _receive(remote, partial, progress)
        partial.close()
        digest = partial.hexdigest()
        if sha256 is not None and digest != sha256.lower():
            partial.discard()
            raise ChecksumError(
                f"{remote.repo}/{remote.file} does not match its checksum: sha256 {digest}, "
                f"expected {sha256}. The download was removed from the cache and will "
                "not be loaded.",
                f"run `{retry_command}` to download it again; if it fails the same way, the "
                "publisher changed the file: update baco-local, or add the pair yourself "
                "with `baco models add`",
            )
    finally:
        partial.close()
    os.replace(slot.partial, slot.blob)
    slot.sidecar.unlink(missing_ok=True)
    _sync_folder(slot.blob.parent)
    return digest


class _EndedEarly(Exception):
    """A response that stopped before the file's end without a transport error."""


def _receive(remote: RemoteFile, partial: PartialFile, progress: Progress) -> None:
    """Ask for the missing bytes until there are none; wait and ask again on a network
    error, giving up after len(RETRY_WAITS_S) attempts in a row that brought nothing."""
    progress(remote.file, partial.size, remote.size)
    fruitless = 0
    while partial.size < remote.size:
        before = partial.size
        try:
            _request_rest(remote, partial, progress)
        except Exception as error:
            if not (isinstance(error, _EndedEarly) or is_transport_error(error)):
                raise
            fruitless = 0 if partial.size > before else fruitless + 1
            if fruitless > len(RETRY_WAITS_S):
                raise
            time.sleep(RETRY_WAITS_S[max(fruitless - 1, 0)])


def _request_rest(remote: RemoteFile, partial: PartialFile, progress: Progress) -> None:
    """One GET for bytes partial.size.. to the end, appended as they arrive."""
    from huggingface_hub import constants
    from huggingface_hub.utils import build_hf_headers, hf_raise_for_status, http_stream_backoff

    headers = build_hf_headers()
    headers["Accept-Encoding"] = "identity"  # byte offsets must be offsets in the file
    if partial.size:
        headers["Range"] = f"bytes={partial.size}-"
    with http_stream_backoff(
        "GET",
        remote.url,
        headers=headers,
        timeout=constants.HF_HUB_DOWNLOAD_TIMEOUT,
        retry_on_exceptions=(),  # a broken stream is retried by _receive, with a new Range
        retry_on_status_codes=_RETRY_STATUSES,
    ) as response:
        if response.status_code == 416:  # the server disowns our bytes: start over
            partial.restart()
            raise _EndedEarly("range not satisfiable")
        hf_raise_for_status(response)
        start = _response_start(response, remote)
        if start != partial.size:  # 200 to a Range request: the whole file comes again
            partial.restart()
            progress(remote.file, 0, remote.size)
            if start != 0:
                raise _EndedEarly(f"the server answered from byte {start}")
        for chunk in response.iter_bytes(CHUNK_BYTES):
            partial.append(chunk[: remote.size - partial.size])
            progress(remote.file, partial.size, remote.size)
            if partial.size >= remote.size:
                return
    raise _EndedEarly(f"the response stopped at {format_size(partial.size)}")


def _response_start(response, remote: RemoteFile) -> int:
    """The file offset of the body's first byte: 0 for a 200, Content-Range's for a 206."""
    if response.status_code != 206:
        return 0
    header = response.headers.get("Content-Range", "")
    match = _CONTENT_RANGE.fullmatch(header.strip())
    if match is None or (match[3] != "*" and int(match[3]) != remote.size):
        raise DownloadError(
            f"The hub answered a range of {remote.repo}/{remote.file} that does not fit its "
            f"size of {remote.size:,} bytes (Content-Range {header!r}).",
            "try again later; if it persists, check HF_ENDPOINT and your proxy",
        )
    return int(match[1])


# --- placing the finished file ----------------------------------------------------------


def _link(slot: CacheSlot) -> None:
    """snapshots/<commit>/<file> -> ../../blobs/<etag>, as huggingface_hub links it; where
    symlinks are not allowed (some Windows setups) the blob moves there instead."""
    pointer = slot.pointer
    if pointer.exists() and pointer.resolve() == slot.blob.resolve():
        return
    pointer.parent.mkdir(parents=True, exist_ok=True)
    if pointer.is_symlink() or pointer.exists():
        pointer.unlink()
    try:
        os.symlink(os.path.relpath(slot.blob, pointer.parent), pointer)
    except OSError:
        os.replace(slot.blob, pointer)


def _sync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable (POSIX); best effort."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

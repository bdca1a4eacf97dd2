"""Fetching GGUF files from the Hugging Face hub into baco's cache, and checking them.

The network edge of the catalog. Files land in `cache_dir()/hub`, in huggingface_hub's
own cache layout (blobs, snapshots, refs), and appear there only once complete and
checked. huggingface_hub resolves each file (URL, HEAD with redirects and auth headers,
commit, etag, size, errors); hub_transfer.py moves the bytes with HTTP Range requests
into `blobs/<etag>.incomplete`, which outlives Ctrl-C, a crash or a lost connection:
the next pull asks only for the missing bytes. Every file is checked against its sha256
(the catalog's, else the hub's LFS etag) before it is renamed into place; a file that
does not match is removed and never loaded.

`HF_HUB_OFFLINE` and `HF_ENDPOINT` are read when a download starts (huggingface_hub
itself reads them once, at import).
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

from ..errors import BacoError
from .storage import (
    ChecksumError,
    DownloadError,
    HubUnreachableError,
    Progress,
    cached_hub_file,
    check_free_space,
    format_size,
    hub_cache_dir,
    hub_endpoint,
    hub_offline,
    is_transport_error,
)

_PROXY_VARIABLES = (
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
)
_PROBE_TIMEOUT = 10.0  # seconds to open a connection to the hub before giving up


def download_hub_file(
    repo: str,
    file: str,
    *,
    revision: str | None = None,
    expected_size: int | None = None,
    sha256: str | None = None,
    progress: Progress | None = None,
    retry_command: str = "baco models pull",
    accept_command: str | None = None,
) -> Path:
    """Fetch one file into the cache (or find it there) and return its path.

    A partial download left by an earlier call is continued, not restarted.
    expected_size is only used to check free disk space first (an estimate is fine).
    sha256: what the file must hash to (the catalog's); without it, the hub's LFS etag.
    accept_command: the command that accepts a file its publisher replaced (said when the
    hub serves other bytes than sha256 names).
    Raises HubUnreachableError when offline, ChecksumError for a file that does not
    match, DownloadError for anything else that failed.
    """
    found = cached_hub_file(repo, file, revision)
    if found is not None:
        return found
    if hub_offline():
        raise HubUnreachableError(
            f"Cannot download {repo}/{file}: HF_HUB_OFFLINE is set.",
            f"unset HF_HUB_OFFLINE and run `{retry_command}` while online, "
            "or use local files: baco run --base FILE.gguf --aligned in-context",
        )
    from . import hub_transfer
    from .hub_cache import partial_bytes

    if expected_size:
        check_free_space(expected_size - partial_bytes(repo, file, revision), hub_cache_dir())
    _probe_hub(f"{repo}/{file}", retry_command)
    try:
        remote = hub_transfer.resolve_remote_file(repo, file, revision, hub_endpoint())
        _check_publisher_kept(remote, sha256, retry_command, accept_command)
        return hub_transfer.fetch_into_cache(
            remote,
            hub_cache_dir(),
            sha256=sha256 or remote.sha256,
            progress=progress,
            retry_command=retry_command,
        )
    except BacoError:
        raise
    except Exception as error:  # every hub or network failure becomes one clear message
        raise _hub_error(error, repo, file, retry_command) from error


def _check_publisher_kept(
    remote, sha256: str | None, retry_command: str, accept_command: str | None = None
) -> None:
    """Refuse before downloading when the hub's etag already says the bytes differ."""
    if sha256 is None or remote.sha256 is None or remote.sha256 == sha256.lower():
        return
    where = "" if remote.revision == "main" else f" at revision {remote.revision}"
    accept = (
        f"to use the new file, run `{accept_command}` (it records the new checksum and "
        "commit in your catalog); or "
        if accept_command
        else ""
    )
    raise ChecksumError(
        f"The publisher changed {remote.file} in {remote.repo}: the hub now serves{where} "
        f"sha256 {remote.sha256} (commit {remote.commit[:12]}), but the catalog names sha256 "
        f"{sha256}. Nothing was downloaded.",
        f"{accept}update baco-local, pin the entry's `revision` to a commit with the "
        f"expected file, or add the pair yourself with `baco models add` (then run "
        f"`{retry_command}`)",
    )


def published_file(repo: str, file: str, retry_command: str):
    """What the hub serves for repo/file at main now (RemoteFile: sha256, size, commit),
    with the same clear errors as a download."""
    if hub_offline():
        raise HubUnreachableError(
            f"Cannot ask the hub about {repo}/{file}: HF_HUB_OFFLINE is set.",
            f"unset HF_HUB_OFFLINE and run `{retry_command}` while online",
        )
    from . import hub_transfer

    _probe_hub(f"{repo}/{file}", retry_command)
    try:
        return hub_transfer.resolve_remote_file(repo, file, None, hub_endpoint())
    except BacoError:
        raise
    except Exception as error:  # every hub or network failure becomes one clear message
        raise _hub_error(error, repo, file, retry_command) from error


def _probe_hub(what: str, retry_command: str) -> None:
    """Fail in seconds when the hub's host cannot be reached at all, instead of after
    huggingface_hub's retries (about 25 s with no network). Behind a proxy the host is
    not reached directly, so there is nothing to probe."""
    from urllib.parse import urlsplit

    if any(os.environ.get(name) for name in _PROXY_VARIABLES):
        return

    url = urlsplit(hub_endpoint() or "https://huggingface.co")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=_PROBE_TIMEOUT).close()
    except OSError as error:
        raise HubUnreachableError(
            f"Cannot reach {url.hostname} to download {what} ({error.strerror or error}).",
            f"check your connection and run `{retry_command}` again, or use local files: "
            "baco run --base FILE.gguf --aligned in-context",
        ) from None


def _hub_error(error: Exception, repo: str, file: str, retry_command: str) -> BacoError:
    from huggingface_hub import errors as hub

    unreachable = (hub.OfflineModeIsEnabled, hub.LocalEntryNotFoundError, ConnectionError)
    where = f"{repo}/{file}"
    if isinstance(error, hub.GatedRepoError):
        return DownloadError(
            f"{repo} is gated on the hub: its license must be accepted before downloading.",
            f"accept the license on https://huggingface.co/{repo}, log in with "
            f"`hf auth login`, then run `{retry_command}` again",
        )
    if isinstance(error, hub.RepositoryNotFoundError):
        return DownloadError(
            f"The hub has no repository {repo!r} (or it is private).",
            "check the repository name; for a private one, log in with `hf auth login`",
        )
    if isinstance(error, hub.RevisionNotFoundError):
        return DownloadError(
            f"The hub repository {repo} has no such revision for {file}.",
            "check the revision in the catalog entry",
        )
    if isinstance(error, hub.RemoteEntryNotFoundError):
        return DownloadError(
            f"The hub repository {repo} has no file {file!r}.",
            f"check the file name on https://huggingface.co/{repo}/tree/main",
        )
    kept = _kept_note(repo, file)
    if isinstance(error, unreachable) or is_transport_error(error):
        reason = error.__cause__ or error
        return HubUnreachableError(
            f"Cannot reach the hub to download {where} ({_one_line(reason)}).{kept}",
            f"check your connection and run `{retry_command}` again, or use local files: "
            "baco run --base FILE.gguf --aligned in-context",
        )
    if isinstance(error, hub.HfHubHTTPError):
        return DownloadError(
            f"The hub refused {where}: {_one_line(error)}.{kept}",
            f"try `{retry_command}` again later",
        )
    if isinstance(error, BacoError):
        return error
    if isinstance(error, OSError) and error.errno is not None:
        return DownloadError(
            f"Could not write {where} into {hub_cache_dir()}: {error.strerror}.{kept}",
            f"free some disk space (or set BACO_HOME to a folder on a larger disk), then run "
            f"`{retry_command}` again",
        )
    return DownloadError(
        f"Downloading {where} failed: {_one_line(error)}.{kept}",
        f"run `{retry_command}` again",
    )


def _kept_note(repo: str, file: str) -> str:
    from .hub_cache import partial_downloads

    kept = max((p.done_bytes for p in partial_downloads(hub_cache_dir(), repo, file)), default=0)
    if not kept:
        return ""
    return f" The {format_size(kept)} downloaded so far are kept: the next pull continues."


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


# --- verification -------------------------------------------------------------


# --- progress -----------------------------------------------------------------


def stderr_progress(stream=None) -> Progress:
    """A progress callback that draws one line per file on stderr (a TTY) or logs
    quarter steps (a pipe or a log file)."""
    stream = stream or sys.stderr
    live = stream.isatty()
    state = {"file": None, "shown": -1, "last": 0.0, "start": 0.0, "first": 0}

    def report(filename: str, done: int, total: int) -> None:
        now = time.monotonic()
        if filename != state["file"]:
            state.update(file=filename, shown=-1, last=0.0, start=now, first=done)
            if done and total and done < total:  # a stopped pull continues
                stream.write(f"  {filename}: {format_size(done)} already here, going on\n")
        state["first"] = min(state["first"], done)  # a restart from 0 resets the base
        percent = int(100 * done / total) if total else 0
        finished = bool(total) and done >= total
        step = percent if live else percent // 25 * 25
        if step == state["shown"] and not finished and now - state["last"] < 0.5:
            return
        if not live and step == state["shown"]:
            return
        state.update(shown=step, last=now)
        rate = (done - state["first"]) / max(now - state["start"], 1e-3)  # this run's bytes
        line = f"  {filename}  {percent:3d}%  {format_size(done)} / {format_size(total or None)}"
        line += f"  {format_size(int(rate))}/s" if rate else ""
        if live:
            stream.write("\r" + line.ljust(78) + ("\n" if finished else ""))
        else:
            stream.write(line + "\n")
        stream.flush()

    return report

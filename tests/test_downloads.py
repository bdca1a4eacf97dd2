"""Pulling pairs from a local stand-in for the hub (HF_ENDPOINT on 127.0.0.1): progress,
resuming after a cut connection, Ctrl-C or a killed process, checksums, offline, errors.
No test leaves loopback."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hub_server import COMMIT, HubServer

from baco_local.cli import main
from baco_local.errors import ModelFileError
from baco_local.models import catalog, downloads, hub_cache, hub_transfer
from baco_local.models import storage as hub_storage
from baco_local.models.catalog import pair_status, pull_pair, resolve_pair_spec
from baco_local.models.storage import ChecksumError, DownloadError, HubUnreachableError
from baco_local.paths import cache_dir, config_dir

BASE_REPO, BASE_FILE = "test-org/tiny-base-GGUF", "tiny-base.gguf"
ALIGNED_REPO, ALIGNED_FILE = "test-org/tiny-it-GGUF", "tiny-it.gguf"
CHUNK = 64 * 1024  # read size in these tests: a tiny model file is several chunks


def random_bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def write_user_catalog(text: str) -> Path:
    path = config_dir() / "models.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def tiny_pair_toml(base: bytes, base_sha: str, aligned: bytes, aligned_sha: str) -> str:
    return f"""
[pairs.tiny]
description = "tiny test pair on the local hub"
router = "p"
gamma = 0.4

[pairs.tiny.base]
repo = "{BASE_REPO}"
file = "{BASE_FILE}"
size_bytes = {len(base)}
sha256 = "{base_sha}"
format = "transcript"

[pairs.tiny.aligned]
repo = "{ALIGNED_REPO}"
file = "{ALIGNED_FILE}"
size_bytes = {len(aligned)}
sha256 = "{aligned_sha}"
format = "template"
"""


@pytest.fixture
def hub(fresh_home, tiny, monkeypatch):
    """The local hub serving the tiny pair, huggingface_hub pointed at it and online."""
    import huggingface_hub.constants

    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    # huggingface_hub read HF_HUB_OFFLINE=1 (set by conftest) once, at import
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub_transfer, "CHUNK_BYTES", CHUNK)
    monkeypatch.setattr(hub_transfer, "RETRY_WAITS_S", (0.0,) * 5)  # retry at once
    with HubServer() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        base, aligned = tiny.base.read_bytes(), tiny.aligned.read_bytes()
        base_sha = server.add(BASE_REPO, BASE_FILE, base)
        aligned_sha = server.add(ALIGNED_REPO, ALIGNED_FILE, aligned)
        write_user_catalog(tiny_pair_toml(base, base_sha, aligned, aligned_sha))
        yield server


def leftovers() -> list[str]:
    """Every file in the hub cache that is a blob or a partial download (with its sidecar)."""
    root = hub_storage.hub_cache_dir()
    found = []
    for path in root.rglob("*") if root.exists() else []:
        if path.parent.name == "blobs" and path.is_file():
            found.append(str(path.relative_to(root)))
    return sorted(found)


def partial_path(repo: str, sha: str) -> Path:
    storage = "models--" + repo.replace("/", "--")
    return hub_storage.hub_cache_dir() / storage / "blobs" / f"{sha}.incomplete"


def stop_when(filename: str, at_least: int):
    """A progress callback that does what Ctrl-C does once `filename` has that many bytes."""

    def progress(name, done, total):
        if name == filename and done >= at_least:
            raise KeyboardInterrupt

    return progress


def range_start(header: str | None) -> int:
    assert header is not None and header.startswith("bytes=") and header.endswith("-")
    return int(header.removeprefix("bytes=").rstrip("-"))


def test_pull_downloads_checks_and_loads_the_pair(hub, tiny):
    seen = []
    spec = pull_pair("tiny", progress=lambda name, done, total: seen.append((name, done, total)))
    assert Path(spec.base).read_bytes() == tiny.base.read_bytes()
    assert Path(spec.aligned).read_bytes() == tiny.aligned.read_bytes()
    assert Path(spec.base).is_relative_to(cache_dir() / "hub")
    assert (spec.name, spec.router, spec.gamma) == ("tiny", "p", 0.4)
    assert (spec.base_format, spec.aligned_format) == ("transcript", "template")
    # progress: each file from 0 up to its full size, never backwards
    size = os.path.getsize(tiny.base)
    base_steps = [done for name, done, _ in seen if name == BASE_FILE]
    assert base_steps[0] == 0 and base_steps[-1] == size and base_steps == sorted(base_steps)
    assert all(total == size for name, _, total in seen if name == BASE_FILE)
    status = pair_status(catalog.get_pair("tiny"))
    assert status.downloaded and status.missing_bytes == 0 and status.label == "tiny"
    # huggingface_hub's cache layout, pinned to the commit the hub named
    assert Path(spec.base).parent.name == COMMIT
    assert Path(spec.base).is_symlink() and Path(spec.base).resolve().name == hub.sha(BASE_FILE)
    assert leftovers() == sorted(
        [
            f"models--test-org--tiny-base-GGUF/blobs/{hub.sha(BASE_FILE)}",
            f"models--test-org--tiny-it-GGUF/blobs/{hub.sha(ALIGNED_FILE)}",
        ]
    )
    # hashed while downloading: both files are marked verified, none is hashed again
    assert len(list((cache_dir() / "verified").glob("*.json"))) == 2
    # a second pull finds everything in the cache and asks the hub nothing
    asked = len(hub.requests)
    assert pull_pair("tiny") == spec
    assert len(hub.requests) == asked


def test_huggingface_hub_finds_the_files_baco_downloaded(hub, tiny):
    """The cache is huggingface_hub's own: its lookup and scan see baco's files."""
    from huggingface_hub import scan_cache_dir, try_to_load_from_cache

    spec = pull_pair("tiny")
    found = try_to_load_from_cache(BASE_REPO, BASE_FILE, cache_dir=hub_storage.hub_cache_dir())
    assert found == spec.base
    scan = scan_cache_dir(hub_storage.hub_cache_dir())
    assert {repo.repo_id for repo in scan.repos} == {BASE_REPO, ALIGNED_REPO}
    assert not scan.warnings and not getattr(scan, "incomplete_files", ())  # 2.x reports them


def test_pulled_pair_loads_by_name_and_generates(hub):
    from baco_local import Pair

    with Pair.load("tiny", n_ctx=256, n_threads=1) as pair:
        result = pair.generate("hello", max_tokens=4, seed=3, temperature=0)
        assert pair.label == "tiny"
        assert len(result.tokens) >= 1


def test_a_cut_connection_resumes_with_a_range_request(hub, tiny):
    hub.cut_next_get(BASE_REPO, BASE_FILE, after_bytes=300_000)
    spec = pull_pair("tiny")
    assert Path(spec.base).read_bytes() == tiny.base.read_bytes()
    # the 4 whole 64 KiB chunks received before the cut were kept, and only the rest asked
    assert hub.gets(BASE_FILE) == [None, f"bytes={4 * CHUNK}-"]
    assert not any(name.endswith((".incomplete", ".json")) for name in leftovers())


def test_a_stopped_pull_keeps_its_bytes_and_the_next_pull_asks_only_for_the_rest(hub, tiny):
    aligned = tiny.aligned.read_bytes()
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C half way through the aligned file
        pull_pair("tiny", progress=stop_when(ALIGNED_FILE, len(aligned) // 2))
    partial = partial_path(ALIGNED_REPO, hub.sha(ALIGNED_FILE))
    kept = partial.stat().st_size
    assert len(aligned) // 2 <= kept < len(aligned) and kept % CHUNK == 0
    assert partial.read_bytes() == aligned[:kept]  # what is kept is the file's beginning
    sidecar = json.loads(partial.with_name(partial.name + ".json").read_text())
    assert sidecar["etag"] == hub.sha(ALIGNED_FILE) and sidecar["size"] == len(aligned)
    assert (sidecar["repo"], sidecar["file"], sidecar["commit"]) == (
        ALIGNED_REPO,
        ALIGNED_FILE,
        COMMIT,
    )
    # nothing half-written is loadable: the pair is not downloaded, the partial is counted
    status = pair_status(catalog.get_pair("tiny"))
    assert status.base_path is not None and status.aligned_path is None
    assert not status.downloaded and status.partial_bytes == kept
    assert status.missing_bytes == len(aligned) - kept
    with pytest.raises(HubUnreachableError):
        resolve_pair_spec("tiny", pull=False)
    # huggingface_hub's own cache scan reports it as an incomplete download (2.x)
    from huggingface_hub import scan_cache_dir

    incomplete = getattr(scan_cache_dir(hub_storage.hub_cache_dir()), "incomplete_files", None)
    assert incomplete is None or {item.file_path for item in incomplete} == {partial}

    seen = []
    spec = pull_pair("tiny", progress=lambda *step: seen.append(step))
    assert Path(spec.aligned).read_bytes() == aligned
    assert hub.gets(ALIGNED_FILE) == [None, f"bytes={kept}-"]  # only the missing bytes
    assert hub.gets(BASE_FILE) == [None]  # the finished file was not fetched again
    assert seen[0] == (ALIGNED_FILE, kept, len(aligned))  # progress starts where it stopped
    assert not partial.exists() and not any(n.endswith(".json") for n in leftovers())
    assert hub_storage.is_verified(Path(spec.aligned), hub.sha(ALIGNED_FILE))


def test_a_killed_pull_resumes_in_a_new_process(hub, tiny):
    """SIGKILL: no finally block runs, yet every chunk written survives for the next pull."""
    data = tiny.base.read_bytes()
    hub.stall_next_get(BASE_REPO, BASE_FILE, after_bytes=3 * CHUNK)
    script = (
        "import sys\n"
        "from baco_local.models import downloads, hub_transfer\n"
        f"hub_transfer.CHUNK_BYTES = {CHUNK}\n"
        "downloads.download_hub_file(sys.argv[1], sys.argv[2])\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, BASE_REPO, BASE_FILE],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    partial = partial_path(BASE_REPO, hub.sha(BASE_FILE))
    try:
        assert hub.stalled.wait(timeout=60), child.stderr.read().decode()
        deadline = time.monotonic() + 30
        while not (partial.is_file() and partial.stat().st_size == 3 * CHUNK):
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, "the child never wrote its 3 chunks"
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        child.kill()
        hub.release.set()
        child.communicate()
    assert child.returncode == -signal.SIGKILL
    assert hub_storage.cached_hub_file(BASE_REPO, BASE_FILE) is None  # not "downloaded"

    path = downloads.download_hub_file(BASE_REPO, BASE_FILE)
    assert path.read_bytes() == data
    assert hub.gets(BASE_FILE) == [None, f"bytes={3 * CHUNK}-"]
    assert not partial.exists()


def test_ctrl_c_on_the_command_line_keeps_the_bytes_and_says_how_to_continue(hub, tiny):
    hub.stall_next_get(BASE_REPO, BASE_FILE, after_bytes=2 * CHUNK)
    script = (
        "import sys\n"
        "from baco_local.models import hub_transfer\n"
        "from baco_local.cli import main\n"
        f"hub_transfer.CHUNK_BYTES = {CHUNK}\n"
        "sys.exit(main(['models', 'pull', 'tiny']))\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    partial = partial_path(BASE_REPO, hub.sha(BASE_FILE))
    try:
        assert hub.stalled.wait(timeout=60)
        deadline = time.monotonic() + 30
        while not (partial.is_file() and partial.stat().st_size == 2 * CHUNK):
            assert child.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        child.send_signal(signal.SIGINT)  # what Ctrl-C sends
        _, err = child.communicate(timeout=30)
    finally:
        child.kill()
        hub.release.set()
    assert child.returncode == 130
    assert "`baco models pull tiny` continues" in err.decode()
    assert "Traceback" not in err.decode()
    assert partial.stat().st_size == 2 * CHUNK
    spec = pull_pair("tiny")
    assert Path(spec.base).read_bytes() == tiny.base.read_bytes()
    assert hub.gets(BASE_FILE) == [None, f"bytes={2 * CHUNK}-"]


def test_a_partial_of_another_version_is_discarded(hub):
    """The publisher replaced the file between two pulls: the old bytes are not continued."""
    old, new = random_bytes(600_000, seed=1), random_bytes(500_000, seed=2)
    old_sha = hub.add(BASE_REPO, "blob.bin", old)
    with pytest.raises(KeyboardInterrupt):
        downloads.download_hub_file(BASE_REPO, "blob.bin", progress=stop_when("blob.bin", 1))
    assert partial_path(BASE_REPO, old_sha).stat().st_size == CHUNK
    new_sha = hub.add(BASE_REPO, "blob.bin", new)
    path = downloads.download_hub_file(BASE_REPO, "blob.bin")
    assert path.read_bytes() == new and path.resolve().name == new_sha
    assert hub.gets("blob.bin") == [None, None]  # the new version from its first byte
    assert not partial_path(BASE_REPO, old_sha).exists()
    assert not any(name.endswith((".incomplete", ".json")) for name in leftovers())


def test_a_server_that_ignores_range_restarts_the_file_cleanly(hub, tiny):
    data = tiny.aligned.read_bytes()
    with pytest.raises(KeyboardInterrupt):
        pull_pair("tiny", progress=stop_when(ALIGNED_FILE, 3 * CHUNK))
    hub.ignore_range(ALIGNED_REPO, ALIGNED_FILE)
    seen = []
    spec = pull_pair("tiny", progress=lambda name, done, total: seen.append(done))
    assert Path(spec.aligned).read_bytes() == data  # not the first 3 chunks twice
    assert hub.gets(ALIGNED_FILE) == [None, f"bytes={3 * CHUNK}-"]  # answered with a 200
    assert seen[:3] == [3 * CHUNK, 0, CHUNK]  # progress went back to the start
    assert seen[-1] == len(data)
    assert hub_storage.is_verified(Path(spec.aligned), hub.sha(ALIGNED_FILE))


def test_a_complete_partial_is_placed_without_asking_for_bytes(hub, tiny):
    """Stopped after the last byte arrived, before the file was checked and renamed."""
    size = tiny.aligned.stat().st_size
    with pytest.raises(KeyboardInterrupt):
        pull_pair("tiny", progress=stop_when(ALIGNED_FILE, size))
    assert partial_path(ALIGNED_REPO, hub.sha(ALIGNED_FILE)).stat().st_size == size
    spec = pull_pair("tiny")
    assert Path(spec.aligned).read_bytes() == tiny.aligned.read_bytes()
    assert hub.gets(ALIGNED_FILE) == [None]  # the second pull only asked for metadata


def test_a_corrupted_download_is_rejected_and_removed(hub):
    hub.corrupt(ALIGNED_REPO, ALIGNED_FILE)
    with pytest.raises(ChecksumError) as caught:
        pull_pair("tiny")
    assert "does not match its checksum" in caught.value.message
    assert "removed from the cache" in caught.value.message
    assert "baco models pull tiny" in caught.value.hint
    status = pair_status(catalog.get_pair("tiny"))
    assert status.aligned_path is None and not status.downloaded and status.partial_bytes == 0
    assert not any("tiny-it-GGUF" in name for name in leftovers())
    markers = list((cache_dir() / "verified").glob("*.json"))
    assert len(markers) == 1  # only the good base file was marked verified


def test_a_damaged_partial_file_is_caught_and_the_next_pull_starts_over(hub, tiny):
    """Bytes kept on disk that went bad (a power cut, a bad disk) never reach a model."""
    with pytest.raises(KeyboardInterrupt):
        pull_pair("tiny", progress=stop_when(ALIGNED_FILE, 2 * CHUNK))
    partial = partial_path(ALIGNED_REPO, hub.sha(ALIGNED_FILE))
    damaged = bytearray(partial.read_bytes())
    damaged[100] ^= 0xFF
    partial.write_bytes(bytes(damaged))
    with pytest.raises(ChecksumError) as caught:
        pull_pair("tiny")
    assert "removed from the cache" in caught.value.message
    assert not partial.exists() and pair_status(catalog.get_pair("tiny")).aligned_path is None
    spec = pull_pair("tiny")
    assert Path(spec.aligned).read_bytes() == tiny.aligned.read_bytes()
    assert hub.gets(ALIGNED_FILE) == [None, f"bytes={2 * CHUNK}-", None]


def test_a_file_replaced_upstream_is_refused_before_downloading(hub):
    """The hub's etag is the sha256: a file that changed under the catalog is not fetched."""
    new_sha = hub.add(ALIGNED_REPO, ALIGNED_FILE, random_bytes(100_000, seed=3))
    with pytest.raises(ChecksumError) as caught:
        pull_pair("tiny")
    assert f"sha256 {new_sha}" in caught.value.message
    assert "Nothing was downloaded" in caught.value.message
    assert "revision" in caught.value.hint
    assert hub.gets(ALIGNED_FILE) == []


def test_a_replaced_file_says_the_publisher_changed_it_and_accept_new_takes_it(hub, capsys):
    """A local stand-in for a re-upload: the hub serves new bytes for the aligned file."""
    new = random_bytes(100_000, seed=3)
    new_sha = hub.add(ALIGNED_REPO, ALIGNED_FILE, new)
    assert main(["models", "pull", "tiny"]) == ChecksumError.exit_code
    err = capsys.readouterr().err
    assert f"The publisher changed {ALIGNED_FILE} in {ALIGNED_REPO}" in err
    assert f"sha256 {new_sha}" in err and "Nothing was downloaded" in err
    assert "baco models pull tiny --accept-new" in err and "Traceback" not in err
    # accepting it downloads the new file and records its checksum, size and commit
    spec = pull_pair("tiny", accept_new=True)
    assert Path(spec.aligned).read_bytes() == new
    assert "accepted the publisher's new tiny-it.gguf" in capsys.readouterr().err
    entry = catalog.get_pair("tiny").aligned
    assert (entry.sha256, entry.size_bytes, entry.revision) == (new_sha, len(new), COMMIT)
    assert Path(resolve_pair_spec("tiny", pull=False).aligned).read_bytes() == new


def test_accepting_a_builtin_pair_file_writes_a_user_override(hub, tiny, tmp_path, monkeypatch):
    """A built-in entry is never edited: the accepted file lands in the user catalog,
    whole (a user table replaces the built-in one), and the rest of the pair stays."""
    builtin = tmp_path / "models.toml"
    base, aligned = tiny.base.read_bytes(), tiny.aligned.read_bytes()
    text = tiny_pair_toml(base, hub.sha(BASE_FILE), aligned, "0" * 64)
    builtin.write_text('default = "tiny"\n' + text, encoding="utf-8")
    monkeypatch.setattr(catalog, "builtin_catalog_path", lambda: builtin)
    write_user_catalog("")
    with pytest.raises(ChecksumError) as caught:
        pull_pair("tiny")
    assert "--accept-new" in caught.value.hint
    pull_pair("tiny", accept_new=True)
    user = (config_dir() / "models.toml").read_text(encoding="utf-8")
    assert f'sha256 = "{hub.sha(ALIGNED_FILE)}"' in user and f'revision = "{COMMIT}"' in user
    pair = catalog.get_pair("tiny")
    assert pair.router == "p" and pair.aligned.file == ALIGNED_FILE and pair.aligned.format
    assert pair.base.sha256 == hub.sha(BASE_FILE)


def test_a_connection_that_keeps_failing_gives_up_and_keeps_the_bytes(hub, tiny):
    hub.cut_next_get(BASE_REPO, BASE_FILE, after_bytes=2 * CHUNK)
    for _ in range(len(hub_transfer.RETRY_WAITS_S) + 1):
        hub.cut_next_get(BASE_REPO, BASE_FILE, after_bytes=0)
    with pytest.raises(HubUnreachableError) as caught:
        pull_pair("tiny")
    assert "Cannot reach the hub" in caught.value.message
    assert "131 kB downloaded so far are kept" in caught.value.message
    assert "baco models pull tiny" in caught.value.hint
    assert len(hub.gets(BASE_FILE)) == 2 + len(hub_transfer.RETRY_WAITS_S)
    spec = pull_pair("tiny")
    assert Path(spec.base).read_bytes() == tiny.base.read_bytes()
    assert hub.gets(BASE_FILE)[-1] == f"bytes={2 * CHUNK}-"


def test_a_full_disk_mid_download_keeps_the_bytes_for_the_next_pull(hub, tiny, monkeypatch):
    real_append = hub_cache.PartialFile.append

    def append_until_full(self, chunk):
        if self.size >= 2 * CHUNK:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_append(self, chunk)

    monkeypatch.setattr(hub_cache.PartialFile, "append", append_until_full)
    with pytest.raises(DownloadError) as caught:
        pull_pair("tiny")
    assert "No space left on device" in caught.value.message
    assert "downloaded so far are kept" in caught.value.message
    assert "free some disk space" in caught.value.hint
    assert partial_path(BASE_REPO, hub.sha(BASE_FILE)).stat().st_size == 2 * CHUNK
    monkeypatch.setattr(hub_cache.PartialFile, "append", real_append)
    spec = pull_pair("tiny")
    assert Path(spec.base).read_bytes() == tiny.base.read_bytes()
    assert hub.gets(BASE_FILE) == [None, f"bytes={2 * CHUNK}-"]


def test_a_second_process_on_the_same_file_is_told_to_wait(hub, monkeypatch):
    monkeypatch.setattr(hub_transfer, "LOCK_WAIT_S", 0.1)
    storage = hub_storage.hub_cache_dir() / "models--test-org--tiny-base-GGUF"
    lock = hub_storage.hub_cache_dir() / ".locks" / storage.name / f"{hub.sha(BASE_FILE)}.lock"
    lock.parent.mkdir(parents=True)
    script = (  # another process holds the lock huggingface_hub and baco share
        "import sys\n"
        "from huggingface_hub.utils import WeakFileLock\n"
        "with WeakFileLock(sys.argv[1]):\n"
        "    print('held', flush=True)\n"
        "    sys.stdin.read()\n"
    )
    other = subprocess.Popen(
        [sys.executable, "-c", script, str(lock)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert other.stdout.readline().strip() == b"held"
        with pytest.raises(DownloadError) as caught:
            downloads.download_hub_file(BASE_REPO, BASE_FILE, retry_command="baco models pull x")
    finally:
        other.communicate(b"")
    assert "Another process is downloading" in caught.value.message
    assert "baco models pull x" in caught.value.hint
    assert downloads.download_hub_file(BASE_REPO, BASE_FILE).is_file()


def test_models_list_and_rm_show_and_remove_a_partial_download(hub, tiny, capsys):
    from baco_local.cli import main

    with pytest.raises(KeyboardInterrupt):
        pull_pair("tiny", progress=stop_when(BASE_FILE, 4 * CHUNK))
    size = tiny.base.stat().st_size + tiny.aligned.stat().st_size
    assert main(["models", "list"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if " tiny " in line)
    assert f"partial {100 * 4 * CHUNK // size}%" in row
    assert main(["models", "list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    (tiny_row,) = [row for row in listing["pairs"] if row["name"] == "tiny"]
    assert tiny_row["partial_bytes"] == 4 * CHUNK and not tiny_row["downloaded"]
    assert tiny_row["missing_bytes"] == size - 4 * CHUNK
    assert "262 kB kept" in pair_status(catalog.get_pair("tiny")).note
    assert main(["models", "rm", "tiny", "--files"]) == 0
    deleted = capsys.readouterr().out
    assert f"{hub.sha(BASE_FILE)}.incomplete" in deleted
    assert leftovers() == []
    assert hub_cache.partial_bytes(BASE_REPO, BASE_FILE) == 0


def test_a_cached_file_changed_on_disk_is_caught_before_loading(hub):
    spec = pull_pair("tiny")
    blob = Path(spec.aligned).resolve()
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))
    with pytest.raises(ChecksumError):
        resolve_pair_spec("tiny", pull=False)
    assert not blob.exists()  # removed: the next pull fetches it again


def test_resolve_pulls_a_missing_pair_with_progress_on_stderr(hub, capsys):
    spec = resolve_pair_spec("tiny")
    assert Path(spec.base).is_file() and Path(spec.aligned).is_file()
    err = capsys.readouterr().err
    assert f"{BASE_FILE}  100%" in err and f"{ALIGNED_FILE}  100%" in err


def test_offline_pull_says_what_to_run_and_asks_nothing(hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubUnreachableError) as caught:
        pull_pair("tiny")
    assert "HF_HUB_OFFLINE" in caught.value.message
    assert "baco models pull tiny" in caught.value.hint
    with pytest.raises(HubUnreachableError) as caught:
        resolve_pair_spec("tiny", pull=False)
    assert "baco models pull tiny" in caught.value.hint
    assert hub.requests == []


def test_unreachable_hub_fails_fast_with_a_clear_message(hub, monkeypatch):
    with socket.socket() as probe:  # a loopback port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(HubUnreachableError) as caught:
        pull_pair("tiny")
    assert "Cannot reach 127.0.0.1" in caught.value.message
    assert "baco models pull tiny" in caught.value.hint


@pytest.mark.parametrize(
    ("repo", "file", "expected"),
    [
        ("nobody/nothing-GGUF", BASE_FILE, "has no repository"),
        (BASE_REPO, "missing.gguf", "has no file 'missing.gguf'"),
    ],
)
def test_hub_refusals_become_clear_errors(hub, repo, file, expected):
    with pytest.raises(DownloadError) as caught:
        downloads.download_hub_file(repo, file)
    assert expected in caught.value.message


def test_no_disk_space_stops_before_downloading(hub, monkeypatch):
    class Usage:
        free = 1000

    monkeypatch.setattr(hub_storage.shutil, "disk_usage", lambda path: Usage)
    with pytest.raises(DownloadError) as caught:
        pull_pair("tiny")
    assert "Not enough disk space" in caught.value.message
    assert "BACO_HOME" in caught.value.hint
    assert hub.requests == []


def test_default_pair_uses_the_real_aligned_file_once_it_is_cached(hub, tiny, monkeypatch):
    """gemma-3-270m's aligned entry pointed at the local hub: once pulled, the offline
    default uses it instead of the in-context partner."""
    from baco_local.models import demo_weights

    monkeypatch.setattr(demo_weights, "demo_base_path", lambda: tiny.base)
    before = resolve_pair_spec("gemma-3-270m", pull=False)
    assert before.aligned == "in-context" and before.base == str(tiny.base)
    config = config_dir() / "models.toml"
    config.write_text(
        config.read_text()
        + f'\n[pairs.gemma-3-270m.aligned]\nrepo = "{ALIGNED_REPO}"\nfile = "{ALIGNED_FILE}"\n'
        'format = "template"\n'
    )
    downloads.download_hub_file(ALIGNED_REPO, ALIGNED_FILE)
    status = pair_status(catalog.get_pair("gemma-3-270m"))
    assert status.label == "gemma-3-270m" and not status.downloaded and status.runs_offline
    after = resolve_pair_spec("gemma-3-270m", pull=False)
    assert after.base == str(tiny.base)
    assert Path(after.aligned).read_bytes() == tiny.aligned.read_bytes()
    assert (after.name, after.router, after.gamma) == ("gemma-3-270m", "p-punc", 0.5)


# --- verification, without a server ---------------------------------------------------


def test_verify_hashes_once_then_trusts_the_unchanged_file(fresh_home, tmp_path, monkeypatch):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + bytes(1000))
    sha = hub_storage.sha256_of(path)
    hub_storage.verify_file(path, size_bytes=1004, sha256=sha, what="the file")
    (marker_file,) = (cache_dir() / "verified").glob(f"{sha}-*.json")
    marker = json.loads(marker_file.read_text())
    assert marker["size"] == 1004 and marker["path"] == str(path.resolve())
    monkeypatch.setattr(hub_storage, "sha256_of", lambda path: pytest.fail("hashed again"))
    hub_storage.verify_file(path, size_bytes=1004, sha256=sha, what="the file")


def test_verify_rehashes_a_file_touched_since(fresh_home, tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + bytes(1000))
    sha = hub_storage.sha256_of(path)
    hub_storage.verify_file(path, size_bytes=None, sha256=sha, what="the file")
    path.write_bytes(b"GGUF" + bytes(999) + b"x")  # same size, new content and mtime
    os.utime(path, ns=(1, 1))
    with pytest.raises(ChecksumError) as caught:
        hub_storage.verify_file(path, size_bytes=1004, sha256=sha, what="the file")
    assert "the file does not match its checksum" in caught.value.message


def test_verify_rejects_a_wrong_size_without_hashing(fresh_home, tmp_path, monkeypatch):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF")
    monkeypatch.setattr(hub_storage, "sha256_of", lambda path: pytest.fail("hashed"))
    with pytest.raises(ChecksumError) as caught:
        hub_storage.verify_file(path, size_bytes=5, sha256="0" * 64, what="the file")
    assert "4 bytes, but the catalog says 5" in caught.value.message


def test_free_space_check_names_sizes(tmp_path, monkeypatch):
    class Usage:
        free = 100_000_000

    monkeypatch.setattr(hub_storage.shutil, "disk_usage", lambda path: Usage)
    hub_storage.check_free_space(30_000_000, tmp_path / "not" / "yet")  # fits, with 64 MiB spare
    with pytest.raises(DownloadError) as caught:
        hub_storage.check_free_space(40_000_000, tmp_path)  # 40 MB + 67 MB margin > 100 MB
    assert "needs 40 MB, 100 MB is free" in caught.value.message


def test_two_pulls_of_one_pair_at_once_end_with_one_verified_copy(hub, tiny):
    """Two `baco models pull` processes: the second waits on the first's lock (the first is
    held mid-transfer by the server), then finds the finished files; each file is fetched
    by one process only and no partial download is left."""
    hub.stall_next_get(BASE_REPO, BASE_FILE, 100_000)
    command = [sys.executable, "-m", "baco_local", "models", "pull", "tiny"]
    pipes = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    processes = [subprocess.Popen(command, **pipes)]
    try:
        assert hub.stalled.wait(timeout=60), "the first pull never reached the server"
        processes.append(subprocess.Popen(command, **pipes))
        time.sleep(2.0)  # the second pull starts, finds the lock held and waits
        assert processes[1].poll() is None
        hub.release.set()  # the first pull's transfer is cut; it asks again and finishes
        outputs = [process.communicate(timeout=120) for process in processes]
    finally:
        hub.release.set()
        for process in processes:
            process.kill()
    for process, (_, err) in zip(processes, outputs):
        assert process.returncode == 0 and "Traceback" not in err, err
    assert outputs[0][0] == outputs[1][0]  # the same two paths
    base_path, aligned_path = (Path(line) for line in outputs[0][0].split())
    assert base_path.read_bytes() == tiny.base.read_bytes()
    assert aligned_path.read_bytes() == tiny.aligned.read_bytes()
    assert len(leftovers()) == 2  # one blob per file: no partial download, no second copy
    assert len(hub.gets(BASE_FILE)) == 2  # the cut transfer and its retry, one process's
    assert hub.gets(ALIGNED_FILE) == [None]


def test_an_embedder_is_pulled_from_the_hub_and_used_by_name(hub, tmp_path, capsys):
    """A catalog embedder with a hub GGUF and no package: `baco models pull NAME`, then
    `baco models path NAME` and `--embedding NAME` find it offline."""
    import bert_factory

    from baco_local.cli import main
    from baco_local.eval.embedder_choice import choose_embedder
    from baco_local.models.bert_gguf import convert_sentence_transformer

    folder = bert_factory.write_tiny_bert(tmp_path / "bert")
    data = convert_sentence_transformer(folder, tmp_path / "bert.gguf", name="tiny").read_bytes()
    sha = hub.add("test-org/tiny-bert-GGUF", "tiny-bert.gguf", data)
    catalog_file = config_dir() / "models.toml"
    catalog_file.write_text(
        catalog_file.read_text()
        + f"""
[embedders.tiny-bert]
description = "a tiny BERT sentence embedder on the local hub"
repo = "test-org/tiny-bert-GGUF"
file = "tiny-bert.gguf"
size_bytes = {len(data)}
sha256 = "{sha}"
"""
    )
    with pytest.raises(ModelFileError, match="not on this machine") as caught:
        choose_embedder("tiny-bert")  # not here yet, and no package to convert
    assert "baco models pull tiny-bert" in caught.value.hint
    assert main(["models", "pull", "tiny-bert"]) == 0
    pulled = Path(capsys.readouterr().out.strip())
    assert pulled.read_bytes() == data and pulled.is_relative_to(cache_dir() / "hub")
    assert main(["models", "path", "tiny-bert"]) == 0
    assert capsys.readouterr().out.strip() == str(pulled)
    choice = choose_embedder("tiny-bert")
    assert (choice.file, choice.pooling) == (str(pulled), "mean pooling, L2-normalised")
    assert main(["models", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["embedders"]}
    assert rows["tiny-bert"]["state"] == "downloaded"

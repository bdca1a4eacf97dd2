"""Pulling pairs through huggingface_hub from a local stand-in for the hub (HF_ENDPOINT on
127.0.0.1): progress, resuming, checksums, offline, errors. No test leaves loopback."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from hub_server import COMMIT, HubServer

from baco_local import catalog, downloads
from baco_local.catalog import pair_status, pull_pair, resolve_pair_spec
from baco_local.downloads import ChecksumError, DownloadError, HubUnreachableError
from baco_local.paths import cache_dir, config_dir

BASE_REPO, BASE_FILE = "test-org/tiny-base-GGUF", "tiny-base.gguf"
ALIGNED_REPO, ALIGNED_FILE = "test-org/tiny-it-GGUF", "tiny-it.gguf"


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
    with HubServer() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        base, aligned = tiny.base.read_bytes(), tiny.aligned.read_bytes()
        base_sha = server.add(BASE_REPO, BASE_FILE, base)
        aligned_sha = server.add(ALIGNED_REPO, ALIGNED_FILE, aligned)
        write_user_catalog(tiny_pair_toml(base, base_sha, aligned, aligned_sha))
        yield server


def leftovers() -> list[str]:
    """Every file in the hub cache that is not a finished, linked download."""
    root = downloads.hub_cache_dir()
    found = []
    for path in root.rglob("*") if root.exists() else []:
        if path.name.endswith(".incomplete") or (path.parent.name == "blobs" and path.is_file()):
            found.append(str(path.relative_to(root)))
    return found


def test_pull_downloads_checks_and_loads_the_pair(hub, tiny):
    seen = []
    spec = pull_pair("tiny", progress=lambda name, done, total: seen.append((name, done, total)))
    assert Path(spec.base).read_bytes() == tiny.base.read_bytes()
    assert Path(spec.aligned).read_bytes() == tiny.aligned.read_bytes()
    assert Path(spec.base).is_relative_to(cache_dir() / "hub")
    assert (spec.name, spec.router, spec.gamma) == ("tiny", "p", 0.4)
    assert (spec.base_format, spec.aligned_format) == ("transcript", "template")
    # progress: each file reported up to its full size
    size = os.path.getsize(tiny.base)
    assert (BASE_FILE, size, size) in seen and seen[0][1] <= seen[-1][1]
    status = pair_status(catalog.get_pair("tiny"))
    assert status.downloaded and status.missing_bytes == 0 and status.label == "tiny"
    # huggingface_hub's cache layout, pinned to the commit the hub named
    assert Path(spec.base).parent.name == COMMIT
    # a second pull finds everything in the cache and asks the hub nothing
    asked = len(hub.requests)
    assert pull_pair("tiny") == spec
    assert len(hub.requests) == asked


def test_pulled_pair_loads_by_name_and_generates(hub):
    from baco_local import Pair

    with Pair.load("tiny", n_ctx=256, n_threads=1) as pair:
        result = pair.generate("hello", max_tokens=4, seed=3, temperature=0)
        assert pair.label == "tiny"
        assert len(result.tokens) >= 1


def test_a_cut_connection_resumes_with_a_range_request(hub, tiny, monkeypatch):
    import huggingface_hub.constants

    # small read chunks so that the bytes received before the cut are on disk
    monkeypatch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)
    hub.cut_next_get(BASE_REPO, BASE_FILE, after_bytes=300_000)
    spec = pull_pair("tiny")
    assert Path(spec.base).read_bytes() == tiny.base.read_bytes()
    ranges = hub.gets(BASE_FILE)
    assert ranges[0] is None and len(ranges) == 2
    resumed_at = int(ranges[1].removeprefix("bytes=").rstrip("-"))
    assert resumed_at == 4 * 64 * 1024  # the whole chunks written before the cut
    assert sorted(leftovers()) == [
        f"models--test-org--tiny-base-GGUF/blobs/{Path(spec.base).resolve().name}",
        f"models--test-org--tiny-it-GGUF/blobs/{Path(spec.aligned).resolve().name}",
    ]


def test_a_stopped_pull_leaves_nothing_and_the_next_pull_finishes(hub, tiny):
    def stop_half_way(name, done, total):
        if name == ALIGNED_FILE and done > 0:
            raise KeyboardInterrupt  # what Ctrl-C does in the middle of a transfer

    import huggingface_hub.constants

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)
        with pytest.raises(KeyboardInterrupt):
            pull_pair("tiny", progress=stop_half_way)
    pair = catalog.get_pair("tiny")
    status = pair_status(pair)
    assert status.base_path is not None and status.aligned_path is None  # base was finished
    assert not status.downloaded
    assert not any(name.endswith(".incomplete") for name in leftovers())
    assert not any("tiny-it-GGUF/blobs" in name for name in leftovers())
    spec = pull_pair("tiny")
    assert Path(spec.aligned).read_bytes() == tiny.aligned.read_bytes()
    assert hub.gets(BASE_FILE) == [None]  # the finished file was not fetched again


def test_a_corrupted_download_is_rejected_and_removed(hub):
    hub.corrupt(ALIGNED_REPO, ALIGNED_FILE)
    with pytest.raises(ChecksumError) as caught:
        pull_pair("tiny")
    assert "does not match its checksum" in caught.value.message
    assert "removed from the cache" in caught.value.message
    assert "baco models pull tiny" in caught.value.hint
    status = pair_status(catalog.get_pair("tiny"))
    assert status.aligned_path is None and not status.downloaded
    assert not any("tiny-it-GGUF" in name for name in leftovers())
    markers = list((cache_dir() / "verified").glob("*.json"))
    assert len(markers) == 1  # only the good base file was marked verified


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

    monkeypatch.setattr(downloads.shutil, "disk_usage", lambda path: Usage)
    with pytest.raises(DownloadError) as caught:
        pull_pair("tiny")
    assert "Not enough disk space" in caught.value.message
    assert "BACO_HOME" in caught.value.hint
    assert hub.requests == []


def test_default_pair_uses_the_real_aligned_file_once_it_is_cached(hub, tiny, monkeypatch):
    """gemma-3-270m's aligned entry pointed at the local hub: once pulled, the offline
    default uses it instead of the in-context partner."""
    from baco_local import demo_weights

    monkeypatch.setattr(demo_weights, "demo_base_path", lambda: tiny.base)
    before = resolve_pair_spec(None)
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
    after = resolve_pair_spec(None)
    assert after.base == str(tiny.base)
    assert Path(after.aligned).read_bytes() == tiny.aligned.read_bytes()
    assert (after.name, after.router, after.gamma) == ("gemma-3-270m", "p-punc", 0.5)


# --- verification, without a server ---------------------------------------------------


def test_verify_hashes_once_then_trusts_the_unchanged_file(fresh_home, tmp_path, monkeypatch):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + bytes(1000))
    sha = downloads.sha256_of(path)
    downloads.verify_file(path, size_bytes=1004, sha256=sha, what="the file")
    (marker_file,) = (cache_dir() / "verified").glob(f"{sha}-*.json")
    marker = json.loads(marker_file.read_text())
    assert marker["size"] == 1004 and marker["path"] == str(path.resolve())
    monkeypatch.setattr(downloads, "sha256_of", lambda path: pytest.fail("hashed again"))
    downloads.verify_file(path, size_bytes=1004, sha256=sha, what="the file")


def test_verify_rehashes_a_file_touched_since(fresh_home, tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + bytes(1000))
    sha = downloads.sha256_of(path)
    downloads.verify_file(path, size_bytes=None, sha256=sha, what="the file")
    path.write_bytes(b"GGUF" + bytes(999) + b"x")  # same size, new content and mtime
    os.utime(path, ns=(1, 1))
    with pytest.raises(ChecksumError) as caught:
        downloads.verify_file(path, size_bytes=1004, sha256=sha, what="the file")
    assert "the file does not match its checksum" in caught.value.message


def test_verify_rejects_a_wrong_size_without_hashing(fresh_home, tmp_path, monkeypatch):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF")
    monkeypatch.setattr(downloads, "sha256_of", lambda path: pytest.fail("hashed"))
    with pytest.raises(ChecksumError) as caught:
        downloads.verify_file(path, size_bytes=5, sha256="0" * 64, what="the file")
    assert "4 bytes, but the catalog says 5" in caught.value.message


def test_free_space_check_names_sizes(tmp_path, monkeypatch):
    class Usage:
        free = 100_000_000

    monkeypatch.setattr(downloads.shutil, "disk_usage", lambda path: Usage)
    downloads.check_free_space(30_000_000, tmp_path / "not" / "yet")  # fits, with 64 MiB spare
    with pytest.raises(DownloadError) as caught:
        downloads.check_free_space(40_000_000, tmp_path)  # 40 MB + 67 MB margin > 100 MB
    assert "needs 40 MB, 100 MB is free" in caught.value.message

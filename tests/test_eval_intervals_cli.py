"""`baco eval` on the tiny pair with intervals, both scalings and the judge check; then
the report alone again from the stored records, with the other scaling."""

from __future__ import annotations

import json

from baco_local.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


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
            "--methods", "aligned@1,min-p@1.5,p-punc@0.5",
            "--out", str(out),
            "--bootstrap", "200",
            "--judge-check", "4",
            *extra,
        ]
    )  # fmt: skip


def test_eval_reports_intervals_verdicts_both_scalings_and_the_judge_check(tiny, tmp_path, capsys):
    prompts = tmp_path / "three.jsonl"
    rows = [
        {"id": "a", "prompt": "Name a cat."},
        {"id": "b", "prompt": "Tell me a joke."},
        {"id": "c", "prompt": "Describe the sea."},
    ]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    assert _eval(tiny, prompts, out) == 0
    captured = capsys.readouterr()
    assert "95% bootstrap interval over prompts (200 resamples of the 3 prompts" in captured.out
    assert "Joint improvement (fixed ranges)" in captured.out
    assert "Joint improvement (min-max, the paper's)" in captured.out
    assert "real" in captured.out and "Judge check on" in captured.out
    results = json.loads((out / "results.json").read_text())
    points = ["aligned@T1", "min-p@T1.5", "p-punc@0.5"]
    for label in points:
        intervals = results["metric_intervals"][label]
        for name in ("judge", "loglik", "distinct_2", "vendi", "semantic_classes"):
            low, high = intervals[name]
            assert low <= results["metrics"][label][name] <= high
    for scale in ("fixed", "minmax"):
        part = results["coverage_by_scale"][scale]
        assert set(part["coverage_intervals"]["overall"]) == {"aligned", "min-p", "p-punc"}
        assert part["joint_improvement"]["router"] == "p-punc"
        assert isinstance(part["joint_improvement"]["real"], bool)
    assert results["coverage_scale"] == "fixed"
    assert results["dominance_intervals"]["overall"]
    assert results["point_differences"]["reference"] == "aligned@T1"
    check = results["judge_check"]
    assert check["answers"] >= 2 and isinstance(check["flagged"], bool)
    assert set(check["mean"]) == {"original", "reversed_rubric", "shuffled", "truncated"}
    assert (out / "plots" / "coverage.png").read_bytes()[:8] == PNG_MAGIC
    report = (out / "report.md").read_text()
    for heading in ("## Coverage scaled both ways", "## Which differences are real"):
        assert heading in report
    assert "## Judge check" in report

    # The report alone, from the stored records and the cached judge check, with the
    # paper's scaling as the headline: nothing is generated or rated again.
    checked = (out / "judge_check.json").read_bytes()
    assert _eval(tiny, prompts, out, "--coverage-scale", "minmax", "--json") == 0
    captured = capsys.readouterr()
    assert "9 of 9 units already" in captured.err and "generating" not in captured.err
    assert (out / "judge_check.json").read_bytes() == checked
    again = json.loads(captured.out)
    assert again["coverage_scale"] == "minmax"
    assert again["coverage"] == results["coverage_by_scale"]["minmax"]["coverage"]
    assert again["metric_intervals"] == results["metric_intervals"]  # same seed
    assert again["judge_check"] == results["judge_check"]


def test_eval_without_intervals_or_judge_check(tiny, tmp_path, capsys):
    prompts = tmp_path / "one.jsonl"
    prompts.write_text(json.dumps({"id": "a", "prompt": "Name a cat."}) + "\n")
    out = tmp_path / "plain"
    code = _eval(
        tiny, prompts, out, "--bootstrap", "0", "--judge-check", "0", "--methods", "aligned@1"
    )
    assert code == 0
    captured = capsys.readouterr()
    assert "No intervals (--bootstrap 0)." in captured.out
    results = json.loads((out / "results.json").read_text())
    assert results["metric_intervals"] == {} and "judge_check" not in results
    assert _eval(tiny, prompts, out, "--bootstrap", "1") == 2
    assert "at least 2 resamples" in capsys.readouterr().err

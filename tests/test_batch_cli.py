"""`baco batch`: a prompts file in, one JSON line per answer out; bad lines named and
skipped; a killed or interrupted run continues without writing an answer twice."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from baco_local.cli import main


def write_lines(path: Path, lines: list) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def pair_args(tiny) -> list[str]:
    return ["--base", str(tiny.base), "--aligned", str(tiny.aligned), "--ctx", "1024"]


def test_every_line_answered_with_its_own_settings(tiny, tmp_path, capsys):
    prompts = write_lines(
        tmp_path / "prompts.jsonl",
        [
            {"id": "sea", "prompt": "Tell me about the sea"},
            {"id": 7, "messages": [{"role": "user", "content": "The cat"}], "n": 2},
            {"id": "greedy", "prompt": "The dog", "temperature": 0, "router": "aligned"},
        ],
    )
    out = tmp_path / "answers.jsonl"
    code = main(["batch", str(prompts), "--out", str(out), *pair_args(tiny), "--seed", "4"])
    assert code == 0
    found = records(out)
    assert sorted((r["id"], r["answer"]) for r in found) == [
        ("7", 0),
        ("7", 1),
        ("greedy", 0),
        ("sea", 0),
    ]
    by_key = {(r["id"], r["answer"]): r for r in found}
    assert by_key[("7", 1)]["seed"] == by_key[("7", 0)]["seed"] + 1 == 5
    greedy = by_key[("greedy", 0)]
    assert greedy["router"] == "aligned" and greedy["settings"]["temperature"] == 0
    assert {t["source"] for t in greedy["tokens"]} == {"aligned"}
    for r in found:
        assert r["text"] == "".join(t["text"] for t in r["tokens"])
        assert r["finish_reason"] in ("eog", "length", "stop")
        assert r["stats"]["tokens"] == len(r["tokens"])
    # The same answer as `baco run` gives for that prompt and settings.
    assert main(["run", "The dog", *pair_args(tiny), "--seed", "4", "--temperature", "0",
                 "--router", "aligned", "--json"]) == 0  # fmt: skip
    alone = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert alone["text"] == greedy["text"]


def test_bad_lines_are_named_and_skipped_and_strict_stops(tiny, tmp_path, capsys):
    prompts = write_lines(
        tmp_path / "prompts.jsonl",
        [
            {"id": "a", "prompt": "The sea"},
            "{not json",
            {"prompt": "no id"},
            {"id": "a", "prompt": "the same id again"},
            {"id": "b", "prompt": "The sky", "temperature": "hot"},
            {"id": "c", "prompt": "x", "colour": "blue"},
            {"id": "d", "prompt": "The moon", "max_tokens": 6},
        ],
    )
    out = tmp_path / "answers.jsonl"
    strict = main(["batch", str(prompts), "--out", str(out), *pair_args(tiny), "--strict"])
    err = capsys.readouterr().err
    assert strict == 2 and "Traceback" not in err
    for number in (2, 3, 4, 5, 6):
        assert f"line {number}:" in err
    assert "line 4: id 'a' is used on line 1 too" in err
    assert "unknown field 'colour'" in err
    assert not out.exists() or out.read_text() == ""  # nothing ran

    code = main(["batch", str(prompts), "--out", str(out), *pair_args(tiny), "--max-tokens", "8"])
    err = capsys.readouterr().err
    assert code == 0 and "5 line(s) skipped" in err
    assert sorted(r["id"] for r in records(out)) == ["a", "d"]


def test_a_missing_file_and_a_foreign_output_are_clear_errors(tiny, tmp_path, capsys):
    code = main(["batch", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o.jsonl")])
    err = capsys.readouterr().err
    assert code == 2 and "Cannot read the prompts file" in err and "Traceback" not in err
    prompts = write_lines(tmp_path / "p.jsonl", [{"id": 1, "prompt": "The sea"}])
    foreign = tmp_path / "notes.txt"
    foreign.write_text("my notes\n")
    code = main(["batch", str(prompts), "--out", str(foreign), *pair_args(tiny)])
    assert code == 2 and "not an answer written by baco batch" in capsys.readouterr().err
    assert foreign.read_text() == "my notes\n"  # untouched


@pytest.mark.parametrize(
    "content",
    [
        b"Meeting notes: buy milk",
        b"\x89PNG\r\x00\x01binary",
        b'{"note": "mine"}',
        b'{"id": 1, "prompt": "The sea"}',
    ],
    ids=["text without a newline", "binary", "JSON that is not an answer", "a prompts line"],
)
def test_an_output_file_whose_last_line_is_not_ours_is_refused_untouched(
    tiny, tmp_path, capsys, content
):
    prompts = write_lines(tmp_path / "p.jsonl", [{"id": 1, "prompt": "The sea"}])
    out = tmp_path / "notes.txt"
    out.write_bytes(content)
    code = main(["batch", str(prompts), "--out", str(out), *pair_args(tiny)])
    err = capsys.readouterr().err
    assert code == 2 and "last line is not an answer written by baco batch" in err
    assert out.read_bytes() == content


def test_a_half_written_answer_is_cut_only_once_a_run_writes(tiny, tmp_path, capsys):
    prompts = write_lines(tmp_path / "p.jsonl", [{"id": 1, "prompt": "The sea"}])
    out = tmp_path / "answers.jsonl"
    out.write_bytes(b'{"id": "1", "answer": 0, "te')  # a run killed mid-write
    # a run that fails before answering leaves the file as it was
    code = main(["batch", str(prompts), "--out", str(out), *pair_args(tiny)[:-1], "10"])
    assert code == 2 and "out of range" in capsys.readouterr().err
    assert out.read_bytes() == b'{"id": "1", "answer": 0, "te'
    assert main(["batch", str(prompts), "--out", str(out), *pair_args(tiny)]) == 0
    assert [(r["id"], r["answer"]) for r in records(out)] == [("1", 0)]


def start_batch(args: list[str], folder: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "baco_local", "batch", *args],
        stdout=subprocess.DEVNULL,
        stderr=open(folder / "stderr.txt", "w"),  # noqa: SIM115
        stdin=subprocess.DEVNULL,
    )


def wait_for_answers(out: Path, count: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while not out.exists() or len(out.read_text().splitlines()) < count:
        assert process.poll() is None, "the batch ended before it was stopped"
        assert time.monotonic() < deadline, "no answers were written"
        time.sleep(0.05)


@pytest.mark.parametrize("how", ["kill", "ctrl-c"])
def test_a_stopped_run_continues_and_never_writes_an_answer_twice(long_tiny, tmp_path, how):
    base, aligned = long_tiny
    lines = [{"id": f"p{i}", "prompt": f"Tell me story number {i}"} for i in range(12)]
    # a few long answers keep the batch busy while it is stopped
    lines += [{"id": f"long{i}", "prompt": "The sea", "max_tokens": 1500} for i in range(3)]
    prompts = write_lines(tmp_path / "prompts.jsonl", lines)
    out = tmp_path / "answers.jsonl"
    args = [str(prompts), "--out", str(out), "--base", str(base), "--aligned", str(aligned)]
    args += ["--ctx", "16384", "--seed", "9", "--max-tokens", "24", "-n", "2", "--lead", "0"]
    process = start_batch(args, tmp_path)
    wait_for_answers(out, 3, process)
    if how == "kill":
        process.kill()
        process.wait()
        with open(out, "a") as f:
            f.write('{"id": "p11", "answer": 0, "te')  # as if killed mid-write
    else:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=120) == 130
        err = (tmp_path / "stderr.txt").read_text()
        assert "run the same command again to continue" in err and "Traceback" not in err
    kept = out.read_text().splitlines()
    assert 3 <= len(kept) < 30
    rerun = start_batch(args, tmp_path)
    assert rerun.wait(timeout=600) == 0, (tmp_path / "stderr.txt").read_text()
    found = records(out)  # every line is whole JSON
    keys = [(r["id"], r["answer"]) for r in found]
    assert len(keys) == len(set(keys)) == 30  # 15 prompts x 2, each once
    assert all(line in out.read_text().splitlines() for line in kept[: len(kept) - 1])
    # A resumed answer is the answer it would have been in one run.
    fresh = tmp_path / "fresh.jsonl"
    short = [x for x in lines if not x["id"].startswith("long")]
    args_fresh = [str(write_lines(tmp_path / "short.jsonl", short)), "--out", str(fresh)]
    args_fresh += args[3:]
    assert main(["batch", *args_fresh]) == 0
    one_run = {(r["id"], r["answer"]): r["text"] for r in records(fresh)}
    resumed = {(r["id"], r["answer"]): r["text"] for r in found if r["id"].startswith("p")}
    assert resumed == one_run


def test_a_bad_value_in_a_line_gets_the_settings_own_message(tiny, tmp_path, capsys):
    prompts = write_lines(
        tmp_path / "prompts.jsonl",
        [
            {"id": "t", "prompt": "The sea", "temperature": -1},
            {"id": "r", "prompt": "The sea", "router": "nope"},
            {"id": [1], "prompt": "The sea"},
            {"id": "e", "prompt": "   "},
            {"id": "m", "messages": [{"role": "user", "content": ""}]},
            {"id": "ok", "prompt": "The sky"},
        ],
    )
    out = tmp_path / "answers.jsonl"
    code = main(["batch", str(prompts), "--out", str(out), *pair_args(tiny), "--max-tokens", "4"])
    err = capsys.readouterr().err
    assert code == 0 and "5 line(s) skipped" in err
    assert "line 1: temperature -1" in err and "out of range" in err and "wrong type" not in err
    assert "line 2: Unknown router 'nope'" in err
    assert "line 3: id must be a string or a whole number (got [1])" in err
    assert "line 4: the prompt is empty" in err
    assert "line 5: the last user message is empty" in err
    assert [r["id"] for r in records(out)] == ["ok"]


def test_lines_the_pair_cannot_answer_are_skipped_or_stop_a_strict_run(tiny, tmp_path, capsys):
    # The ensemble needs one vocabulary: known only once the pair is loaded.
    prompts = write_lines(
        tmp_path / "prompts.jsonl",
        [
            {"id": "mix", "prompt": "The sea", "router": "ensemble"},
            {"id": "ok", "prompt": "The sky"},
        ],
    )
    out = tmp_path / "answers.jsonl"
    args = [str(prompts), "--out", str(out), "--base", str(tiny.base)]
    args += ["--aligned", str(tiny.other_vocab), "--ctx", "1024", "--max-tokens", "4"]
    assert main(["batch", *args, "--strict"]) == 2
    err = capsys.readouterr().err
    assert "id 'mix': The ensemble baseline" in err and "cannot be answered by this pair" in err
    assert not out.exists() or out.read_text() == ""  # nothing was answered
    assert main(["batch", *args]) == 0  # skipped, like a malformed line
    err = capsys.readouterr().err
    assert "id 'mix'" in err and "done: 1 of 1 answers" in err and "1 line(s) skipped" in err
    assert [r["id"] for r in records(out)] == ["ok"]
    # Workers find such a line as they go: with --strict the first one stops the run.
    other = tmp_path / "workers.jsonl"
    args[args.index(str(out))] = str(other)
    assert main(["batch", *args, "--strict", "--workers", "2", "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert "the line with id 'mix' cannot be answered by this pair" in err
    assert "Traceback" not in err


def test_a_rerun_with_other_settings_does_not_mix_them_into_the_file(tiny, tmp_path, capsys):
    prompts = write_lines(tmp_path / "prompts.jsonl", [{"id": "a", "prompt": "The sea", "n": 3}])
    out = tmp_path / "answers.jsonl"
    args = [str(prompts), "--out", str(out), *pair_args(tiny), "--seed", "2"]
    assert main(["batch", *args, "--max-tokens", "6"]) == 0
    whole = [(r["answer"], r["seed"], r["text"]) for r in records(out)]
    first = out.read_text().splitlines()[0]
    out.write_text(first + "\n")  # as if stopped after the first answer
    code = main(["batch", *args, "--max-tokens", "9"])
    err = capsys.readouterr().err
    assert code == 2 and "id 'a', made with other settings (max_tokens 6 there, 9 now)" in err
    assert out.read_text() == first + "\n"  # untouched
    assert main(["batch", *args, "--max-tokens", "6"]) == 0  # the same options continue
    assert sorted((r["answer"], r["seed"], r["text"]) for r in records(out)) == sorted(whole)
    capsys.readouterr()
    # every answer is in: a rerun with other options is told so, not "all done"
    assert main(["batch", *args, "--max-tokens", "9"]) == 2
    assert "made with other settings (max_tokens 6 there, 9 now)" in capsys.readouterr().err
    assert main(["batch", *args, "--max-tokens", "6"]) == 0
    assert "all 3 answers are already in" in capsys.readouterr().err


def test_a_continued_line_keeps_its_seed_and_another_seed_is_refused(tiny, tmp_path, capsys):
    prompts = write_lines(tmp_path / "prompts.jsonl", [{"id": "a", "prompt": "The sea", "n": 3}])
    out = tmp_path / "answers.jsonl"
    args = [str(prompts), "--out", str(out), *pair_args(tiny), "--max-tokens", "5"]
    assert main(["batch", *args]) == 0  # no seed: one is drawn for the line
    seeds = [r["seed"] for r in records(out)]
    assert seeds == [seeds[0], seeds[0] + 1, seeds[0] + 2]
    out.write_text(out.read_text().splitlines()[0] + "\n")  # as if stopped after one
    assert main(["batch", *args]) == 0  # continues with the line's seed, not a new one
    assert sorted(r["seed"] for r in records(out)) == seeds
    capsys.readouterr()
    # one file, one set of settings: a different seed does not join it
    assert main(["batch", *args, "-n", "4", "--seed", str(seeds[0] + 1)]) == 2
    err = capsys.readouterr().err
    assert f"seed {seeds[0]} there, {seeds[0] + 1} now" in err
    assert len(records(out)) == 3


def test_a_line_with_neither_prompt_nor_messages_says_so(tiny, tmp_path, capsys):
    prompts = write_lines(tmp_path / "p.jsonl", [{"id": "c"}, {"id": "d", "prompt": "The sea"}])
    code = main(["batch", str(prompts), "--out", str(tmp_path / "o.jsonl"), *pair_args(tiny)])
    err = capsys.readouterr().err
    assert code == 0 and "line 1: the prompt is missing" in err and "not both" not in err


def test_a_whole_answer_without_its_newline_is_kept_and_continued(tiny, tmp_path):
    prompts = write_lines(tmp_path / "p.jsonl", [{"id": 1, "prompt": "The sea", "n": 2}])
    out = tmp_path / "answers.jsonl"
    args = [str(prompts), "--out", str(out), *pair_args(tiny), "--seed", "4"]
    assert main(["batch", *args]) == 0
    first, second = out.read_text().splitlines()
    out.write_text(first)  # the first answer whole, its newline lost
    assert main(["batch", *args]) == 0
    kept, again = out.read_text().splitlines()
    assert kept == first  # kept as it was, its newline added

    def answer(line):
        record = json.loads(line)
        return record["answer"], record["seed"], record["text"]

    assert answer(again) == answer(second)  # the one missing, as the first run wrote it


def test_a_file_from_before_seeds_carried_over_is_still_continued(tiny, tmp_path, capsys):
    """Earlier versions drew a fresh seed at each rerun of a line without one, so a
    resumed line may hold answers of several seeds: it is not refused for that."""
    prompts = write_lines(tmp_path / "p.jsonl", [{"id": "a", "prompt": "The sea", "n": 3}])
    out = tmp_path / "answers.jsonl"
    args = [str(prompts), "--out", str(out), *pair_args(tiny), "--max-tokens", "4"]
    assert main(["batch", *args]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    lines[2]["seed"] += 1000  # as an older rerun wrote it
    out.write_text("".join(json.dumps(r) + "\n" for r in lines))
    capsys.readouterr()
    assert main(["batch", *args]) == 0
    assert "all 3 answers are already in" in capsys.readouterr().err

"""`baco run` and `baco routers` as a user runs them."""

import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from baco_local.cli import main
from baco_local.core.routers import ROUTERS
from baco_local.errors import PromptError


def tiny_args(tiny):
    return ["--base", str(tiny.base), "--aligned", str(tiny.aligned), "--ctx", "512"]


def test_json_has_one_object_per_answer_with_every_token_source(capsys, tiny):
    code = main(
        [
            "run",
            "The cat",
            *tiny_args(tiny),
            "--json",
            "-n",
            "2",
            "--seed",
            "5",
            "--max-tokens",
            "12",
            "--router",
            "p",
            "--gamma",
            "0.6",
        ]
    )
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and len(out) == 2
    answers = [json.loads(line) for line in out]
    assert [a["seed"] for a in answers] == [5, 6]
    for a in answers:
        assert a["router"] == "p" and a["gamma"] == 0.6
        assert a["text"] == "".join(t["text"] for t in a["tokens"])
        assert {t["source"] for t in a["tokens"]} <= {"base", "aligned"}
        assert all(isinstance(t["id"], int) for t in a["tokens"])
        stats = a["stats"]
        assert stats["tokens"] == len(a["tokens"])
        assert stats["base_fraction"] == pytest.approx(
            sum(t["source"] == "base" for t in a["tokens"]) / len(a["tokens"]), abs=1e-4
        )
        assert stats["tokens_per_second"] >= 0


def test_text_output_streams_the_answer_and_a_summary(capsys, tiny):
    code = main(["run", "The cat", *tiny_args(tiny), "--seed", "3", "--max-tokens", "10"])
    out, err = capsys.readouterr()
    assert code == 0 and out.strip()
    assert "p-punc" in err and "seed 3" in err and "tok/s" in err


def test_show_source_marks_base_tokens(capsys, tiny):
    args = ["run", "The cat", *tiny_args(tiny), "--seed", "3", "--max-tokens", "30"]
    args += ["--router", "random", "--gamma", "0.5", "--show-source"]
    main([*args, "--json"])
    tokens = json.loads(capsys.readouterr().out)["tokens"]
    base_texts = [t["text"] for t in tokens if t["source"] == "base"]
    main(args)
    out, err = capsys.readouterr()
    # not a terminal: base tokens are bracketed, and the legend says so
    assert base_texts and all(f"[{t}]" in out for t in base_texts)
    assert "[base] in brackets" in err


def test_prompt_from_standard_input(capsys, tiny, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("The sea"))
    code = main(["run", "-", *tiny_args(tiny), "--json", "--max-tokens", "3", "--seed", "1"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["stats"]["tokens"] > 0


def test_routers_lists_every_router(capsys):
    assert main(["routers", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} == set(ROUTERS)
    assert [r["name"] for r in rows if r["default"]] == ["p-punc"]
    assert main(["routers"]) == 0
    text = capsys.readouterr().out
    assert all(name in text for name in ROUTERS) and "gamma" in text


def test_module_entry_point_and_internal_errors_without_traceback(tiny):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "baco_local", "run", "hi", "--router", "bogus", *tiny_args(tiny)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2
    assert "Unknown router" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.gemma
def test_ctrl_c_keeps_what_was_generated_and_exits_130(gemma_path):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "baco_local",
            "run",
            "Once upon a time, in a lighthouse,",
            "--raw",
            "--base",
            str(gemma_path),
            "--max-tokens",
            "3000",
            "--ctx",
            "4096",
            "--seed",
            "1",
            "--router",
            "base",
            "--stop",
            "NEVER-STOP-HERE",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        first = process.stdout.read(20)  # wait until the answer is streaming
        assert first
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        rest, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130
    assert len(first + rest) > 20  # what was generated was kept and printed
    assert b"cancelled" in err and b"Traceback" not in err


def test_plain_baco_takes_chat_options(monkeypatch):
    import baco_local.cli.chat as chat

    seen = []
    monkeypatch.setattr(chat, "run", lambda args: seen.append((args.answers, args.verbose)))
    assert main(["--answers", "3"]) == 0  # read as `baco chat --answers 3`
    assert main(["-v"]) == 0
    assert seen == [(3, False), (None, True)]  # None: the remembered count, else 5


def test_several_answers_are_decoded_together_and_printed_whole_in_order(capsys, tiny):
    code = main(
        ["run", "The cat", *tiny_args(tiny), "-n", "3", "--seed", "4", "--max-tokens", "10"]
    )
    out, err = capsys.readouterr()
    assert code == 0
    headers = [line for line in out.splitlines() if line.startswith("--- answer")]
    assert headers == ["--- answer 1/3 ---", "--- answer 2/3 ---", "--- answer 3/3 ---"]
    assert err.count("seed ") == 3  # one summary line per answer
    code = main(
        [
            "run",
            "The cat",
            *tiny_args(tiny),
            "-n",
            "3",
            "--seed",
            "4",
            "--max-tokens",
            "10",
            "--json",
        ]
    )
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["answer"] for r in records] == [0, 1, 2]
    assert [r["seed"] for r in records] == [4, 5, 6]


def test_ctrl_c_during_several_answers_keeps_each_and_exits_130(long_tiny):
    base, aligned = long_tiny
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "baco_local",
            "run",
            "Once upon a time",
            "--base",
            str(base),
            "--aligned",
            str(aligned),
            "-n",
            "3",
            "--max-tokens",
            "5000",
            "--ctx",
            "32768",
            "--seed",
            "1",
            "--stop",
            "NEVER-STOP-HERE",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        started = process.stderr.readline()  # the answers are being written
        assert b"3 answers together" in started
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130
    assert out.count(b"--- answer ") == 3, (out, err)  # every answer, as far as it got
    assert err.count(b"cancelled") == 3 and b"Traceback" not in err


def test_raw_runs_a_pair_of_two_vocabularies_without_chat_templates(capsys, tiny, tmp_path):
    """--raw needs no prompt format, so no chat template, for either model, whether the
    pair shares one vocabulary or collaborates word by word across two."""
    import gguf_factory as factory

    plain_small = factory.write_tiny_model(tmp_path / "small-plain.gguf", seed=4, vocab="small")
    words = ["run", "the old map", "--base", str(tiny.base), "--aligned", str(plain_small)]
    words += ["--ctx", "512", "--max-tokens", "12", "--seed", "1", "--router", "p"]
    assert main([*words, "--raw", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["text"] and {t["source"] for t in answer["tokens"]} == {"base", "aligned"}
    assert main([*words, "--raw", "--json", "-n", "2"]) == 0  # several answers too
    assert [json.loads(line)["seed"] for line in capsys.readouterr().out.splitlines()] == [1, 2]
    # without --raw, the chat needs a format: the error says which file and what to do
    assert main(words) == PromptError.exit_code
    err = capsys.readouterr().err
    assert "small-plain.gguf has no chat template" in err and "--raw" in err
    assert "Traceback" not in err


def test_a_mistyped_command_or_option_is_named_by_the_right_parser(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["rn", "hello"])
    err = capsys.readouterr().err
    assert caught.value.code == 2 and "unknown command 'rn'. Did you mean 'run'?" in err
    with pytest.raises(SystemExit) as caught:
        main(["run", "hello", "--frobnicate"])
    err = capsys.readouterr().err
    assert caught.value.code == 2 and err.startswith("usage: baco run")
    assert "unrecognized arguments: --frobnicate" in err

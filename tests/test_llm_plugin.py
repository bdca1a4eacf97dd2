"""The `llm` plugin, through llm's Python API and its command, on the tiny pair.

Each test runs in a child process: llm loads plugins (and their imports) once per
process, and this keeps that out of the rest of the suite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("llm", reason="needs simonw's llm (demo or dev extra)")

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import llm

    model = llm.get_model(sys.argv[1])
    options = json.loads(sys.argv[2])
    response = model.prompt("Tell me about the cat.", system="Be brief.", **options)
    text = "".join(response)  # streamed
    conversation = model.conversation()
    first = conversation.prompt("Name a colour.", max_tokens=6, seed=1).text()
    second = conversation.prompt("And another?", max_tokens=6, seed=1)
    print(json.dumps({
        "text": text,
        "json": response.response_json,
        "usage": [response.input_tokens, response.output_tokens],
        "conversation": [first, second.text()],
        "ids": [m.model_id for m in llm.get_models() if m.model_id.startswith("baco")],
    }))
    model.close()
    """
)


def run_llm(args, env, timeout=300):
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture
def llm_env(tiny, tmp_path, fresh_home):
    env = dict(os.environ)
    env.update(
        LLM_USER_PATH=str(tmp_path / "llm"),
        BACO_LLM_BASE=str(tiny.base),
        BACO_LLM_ALIGNED=str(tiny.aligned),
    )
    return env


def test_llm_python_api_streams_an_answer_with_router_and_gamma(llm_env):
    options = {"router": "p", "gamma": 0.7, "max_tokens": 12, "seed": 4, "lead": 0}
    done = run_llm([sys.executable, "-c", SCRIPT, "baco", json.dumps(options)], llm_env)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["text"].strip()
    assert out["json"]["router"] == "p" and out["json"]["gamma"] == 0.7
    assert out["json"]["seed"] == 4 and 0 <= out["json"]["base_fraction"] <= 1
    assert out["usage"][1] > 0
    assert all(answer.strip() for answer in out["conversation"])
    assert "baco" in out["ids"] and "baco-gemma-3-270m" in out["ids"]


def test_llm_catalog_pairs_are_models_too(llm_env, tiny):
    from baco_local.models.catalog import add_user_pair

    add_user_pair("tinypair", str(tiny.base), str(tiny.aligned))  # in this test's BACO_HOME
    env = {k: v for k, v in llm_env.items() if not k.startswith("BACO_LLM_")}
    done = run_llm([sys.executable, "-c", SCRIPT, "baco-tinypair", '{"max_tokens": 8}'], env)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["json"]["pair"] == "tinypair" and "baco-tinypair" in out["ids"]


def test_llm_command_takes_router_and_gamma_options(llm_env):
    args = ["-m", "baco", "Tell me about the cat.", "-o", "router", "p-punc", "-o", "gamma"]
    done = run_llm([sys.executable, "-m", "llm", *args, "0.5", "-o", "max_tokens", "8"], llm_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()


def test_llm_command_reports_a_bad_option_without_a_traceback(llm_env):
    done = run_llm([sys.executable, "-m", "llm", "-m", "baco", "hi", "-o", "gamma", "9"], llm_env)
    assert done.returncode != 0
    assert "gamma 9.0 is out of range" in done.stderr and "Traceback" not in done.stderr

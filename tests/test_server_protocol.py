"""The server's request parsing and response shapes, without a server or a model."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from baco_local.core.settings import GenerationSettings
from baco_local.server.errors import ApiError
from baco_local.server.protocol import parse_chat, parse_completion, router_from_model
from baco_local.server.responses import FINISH_REASONS, Reply
from baco_local.server.settings import ServerSettings

DEFAULTS = GenerationSettings(router="p-punc", gamma=0.4, max_tokens=50)
USER = [{"role": "user", "content": "hi"}]


def chat(**fields):
    return parse_chat(json.dumps(fields).encode(), DEFAULTS, "pair")


def test_fields_left_out_keep_the_server_defaults():
    request = chat(messages=USER)
    assert request.settings == DEFAULTS and request.n == 1 and not request.stream


def test_request_fields_become_settings():
    request = chat(
        messages=USER,
        temperature=0,
        top_p=0.5,
        top_k=7,
        min_p=0.1,
        seed=9,
        stop="END",
        lead=0,
        repeat_penalty=1.0,
        max_tokens=10,
        max_completion_tokens=20,  # the newer name wins
        n=3,
        stream=True,
        stream_options={"include_usage": True},
    )
    s = request.settings
    assert (s.temperature, s.top_p, s.top_k, s.min_p, s.seed) == (0, 0.5, 7, 0.1, 9)
    assert (s.stop, s.lead, s.repeat_penalty, s.max_tokens) == (("END",), 0, 1.0, 20)
    assert request.n == 3 and request.stream and request.include_usage


def test_a_new_router_takes_its_own_default_gamma_unless_one_is_given():
    assert chat(messages=USER, router="h").settings.gamma == 1.5
    assert chat(messages=USER, router="h", gamma=2.0).settings.gamma == 2.0
    assert chat(messages=USER, gamma=0.9).settings.router == "p-punc"  # server's router kept


def test_a_model_id_with_a_router_suffix_picks_the_router():
    assert router_from_model("pair:h-punc", "pair") == "h-punc"
    assert router_from_model("pair", "pair") is None
    assert router_from_model("gpt-4o:mini", "pair") is None  # another id: ignored
    assert chat(model="pair:base", messages=USER).settings.router == "base"
    assert chat(model="pair:base", router="p", messages=USER).settings.router == "p"


def test_messages_accept_text_parts_and_the_developer_role():
    request = chat(
        messages=[
            {"role": "developer", "content": "Be brief."},
            {
                "role": "user",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            },
        ]
    )
    assert [(m.role, m.content) for m in request.prompt] == [
        ("system", "Be brief."),
        ("user", "a\nb"),
    ]


def test_a_completion_takes_one_raw_prompt():
    request = parse_completion(b'{"prompt": ["Once upon"]}', DEFAULTS, "pair")
    assert request.prompt == "Once upon" and request.raw and request.prompt_param == "prompt"
    with pytest.raises(ApiError) as caught:
        parse_completion(b'{"prompt": ["a", "b"]}', DEFAULTS, "pair")
    assert caught.value.param == "prompt" and caught.value.status == 400


def test_every_finish_reason_maps_to_openai():
    from baco_local.core.events import FINISH_REASONS as BACO_REASONS

    assert set(FINISH_REASONS) == set(BACO_REASONS)
    assert set(FINISH_REASONS.values()) == {"stop", "length"}


def test_chunk_shapes():
    reply = Reply.new("chat", "pair:p")
    assert reply.delta(0, "hi", role=True)["delta"] == {"role": "assistant", "content": "hi"}
    assert reply.delta(1, finish="length") == {
        "index": 1,
        "delta": {},
        "logprobs": None,
        "finish_reason": "length",
    }
    assert Reply.new("text", "pair:p").delta(0, "x")["text"] == "x"


def test_server_settings_know_loopback_and_check_ranges():
    assert ServerSettings().loopback and ServerSettings(host="::1").loopback
    assert not ServerSettings(host="0.0.0.0").loopback
    with pytest.raises(Exception, match="queue"):
        ServerSettings(queue=-1)


def test_baco_start_up_imports_no_server_stack():
    code = (
        "import sys; from baco_local.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('starlette', 'uvicorn', 'llm') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stderr


def test_serve_warns_when_listening_beyond_this_machine_without_a_key(tmp_path):
    missing = tmp_path / "missing.gguf"
    done = subprocess.run(
        [sys.executable, "-m", "baco_local", "serve", "--host", "0.0.0.0", "--base", str(missing)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    # It warns before loading; loading the missing file then fails with one message.
    assert "warning: listening on 0.0.0.0 without an API key" in done.stderr
    assert done.returncode == 2 and "Traceback" not in done.stderr

"""`baco serve` as a client sees it: a real server process on 127.0.0.1, driven by the
official OpenAI client (and by raw HTTP where a client would not send such a body)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import openai
import pytest
from serve_process import start_server, stop_server

from baco_local.core.routers import ROUTERS

KEY = "test-key-123"


@pytest.fixture(scope="module")
def server(tiny, tmp_path_factory):
    """The tiny pair with a small context and queue; stopped with Ctrl-C at the end."""
    args = ["--base", str(tiny.base), "--aligned", str(tiny.aligned), "--ctx", "512"]
    args += ["--queue", "2", "--max-tokens", "24"]
    process = start_server(args, tmp_path_factory.mktemp("serve"))
    yield process
    assert stop_server(process) == 0, process.log()


@pytest.fixture(scope="module")
def keyed_server(long_tiny, tmp_path_factory):
    base, aligned = long_tiny
    args = ["--base", str(base), "--aligned", str(aligned), "--ctx", "32768", "--api-key", KEY]
    args += ["--parallel", "1"]  # one request at a time: the others wait their turn
    process = start_server(args, tmp_path_factory.mktemp("serve-keyed"))
    yield process
    assert stop_server(process) == 0, process.log()


def client_for(server, api_key="unused", timeout=60) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key=api_key, max_retries=0, timeout=timeout)


def post(url: str, body: bytes, headers: dict | None = None) -> tuple[int, dict]:
    """POST raw bytes; return (status, parsed JSON body)."""
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def get(url: str, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


HELLO = [{"role": "user", "content": "Tell me about the cat."}]


# --- answers ------------------------------------------------------------------------------


def test_models_lists_the_pair_and_one_entry_per_router(server):
    ids = [m.id for m in client_for(server).models.list()]
    assert ids == ["tiny-base"] + [f"tiny-base:{name}" for name in ROUTERS]


def test_models_leave_out_a_router_the_pair_cannot_run(tiny):
    from baco_local import Pair
    from baco_local.server.model import PairHost

    with Pair.load(base=tiny.base, aligned=tiny.other_vocab, n_ctx=512) as pair:
        host = PairHost(pair, pair.default_settings, queue=1)
        try:
            routers = [i.split(":", 1)[1] for i in host.model_ids[1:]]
        finally:
            host.close()
    assert routers == [name for name in ROUTERS if name != "ensemble"]  # one vocabulary only


def test_a_conversation_cut_to_fit_says_so_in_baco_notes(server):
    long_chat = []
    for turn in range(30):
        long_chat.append({"role": "user", "content": f"Tell me about the sea, part {turn}."})
        long_chat.append({"role": "assistant", "content": "The sea is wide and deep. " * 3})
    long_chat.append({"role": "user", "content": "And the sky?"})
    body = {"messages": long_chat, "max_tokens": 8}
    status, reply = post(f"{server.url}/chat/completions", json.dumps(body).encode())
    assert status == 200, reply
    (note,) = [n for n in reply["baco"]["notes"] if "no longer fits" in n]
    assert "oldest" in note
    status, short = post(f"{server.url}/chat/completions", json.dumps({"messages": HELLO}).encode())
    assert status == 200 and "notes" not in short["baco"]  # nothing to say


def test_chat_completion_with_n_answers_and_baco_fields(server):
    response = client_for(server).chat.completions.create(
        model="tiny-base",
        messages=[{"role": "system", "content": "Be brief."}, *HELLO],
        n=2,
        seed=7,
        max_tokens=12,
        extra_body={"router": "p", "gamma": 0.6, "lead": 0},
    )
    assert len(response.choices) == 2
    assert response.model == "tiny-base:p"
    baco = response.model_extra["baco"]
    assert (baco["router"], baco["gamma"]) == ("p", 0.6)
    assert [c["seed"] for c in baco["choices"]] == [7, 8]
    for choice, extra in zip(response.choices, baco["choices"]):
        assert choice.finish_reason in ("stop", "length")
        assert choice.message.role == "assistant"
        assert choice.message.content == "".join(t["text"] for t in extra["tokens"])
        sources = [t["source"] for t in extra["tokens"]]
        assert set(sources) <= {"base", "aligned"}
        assert extra["base_fraction"] == pytest.approx(
            sources.count("base") / len(sources), abs=1e-4
        )
    usage = response.usage
    assert usage.completion_tokens == sum(len(c["tokens"]) for c in baco["choices"])
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens > 0


def test_ignore_eos_writes_max_tokens_past_stop_strings(server):
    client = client_for(server)
    request = dict(model="tiny-base", messages=HELLO, seed=5, max_tokens=24)
    text = client.chat.completions.create(**request, extra_body={"lead": 0}).choices[0]
    text = text.message.content
    assert len(text) >= 4
    stop = [text[2:4]]  # met early in the same answer
    stopped = client.chat.completions.create(**request, stop=stop, extra_body={"lead": 0})
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.usage.completion_tokens < 24
    full = client.chat.completions.create(
        **request, stop=stop, extra_body={"lead": 0, "ignore_eos": True}
    )
    assert full.choices[0].finish_reason == "length"
    assert full.usage.completion_tokens == 24
    assert full.choices[0].message.content.startswith(text[:2])


def test_streamed_chat_completion_matches_the_same_seed_unstreamed(server):
    client = client_for(server)
    request = dict(model="tiny-base", messages=HELLO, n=2, seed=11, max_tokens=16)
    whole = client.chat.completions.create(**request)
    texts, finishes, sources = {}, {}, set()
    stream = client.chat.completions.create(
        **request, stream=True, stream_options={"include_usage": True}
    )
    usage, lasts = None, {}
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
            if choice.finish_reason is not None:
                finishes[choice.index] = choice.finish_reason
                lasts[choice.index] = chunk.model_extra["baco"]
        if chunk.model_extra.get("baco", {}).get("source"):
            sources.add(chunk.model_extra["baco"]["source"])
    assert texts == {c.index: c.message.content for c in whole.choices}
    assert finishes == {c.index: c.finish_reason for c in whole.choices}
    assert sources <= {"base", "aligned"} and sources
    assert usage is not None and usage.completion_tokens == whole.usage.completion_tokens
    # each answer's last chunk says what the whole response's baco object says of it
    baco = whole.model_extra["baco"]
    for i, last in lasts.items():
        for key in ("pair", "router", "gamma", "prompt_tokens"):
            assert last[key] == baco[key], key
        answer = {k: v for k, v in baco["choices"][i].items() if k != "tokens"}
        assert {k: last[k] for k in answer} == answer


def test_a_model_id_with_a_router_picks_that_router(server):
    response = client_for(server).chat.completions.create(
        model="tiny-base:base", messages=HELLO, max_tokens=8
    )
    baco = response.model_extra["baco"]
    assert baco["router"] == "base" and baco["choices"][0]["base_fraction"] == 1.0


def test_completion_continues_a_raw_prompt(server):
    response = client_for(server).completions.create(
        model="tiny-base", prompt="The cat and the dog", max_tokens=8, seed=3
    )
    (choice,) = response.choices
    assert response.object == "text_completion"
    assert choice.text and choice.finish_reason in ("stop", "length")
    tokens = response.model_extra["baco"]["choices"][0]["tokens"]
    assert response.usage.completion_tokens == len(tokens)


def test_streamed_completion_ends_with_a_finish_reason(server):
    stream = client_for(server).completions.create(
        model="tiny-base", prompt="The cat", max_tokens=6, stream=True
    )
    chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks if c.choices)
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_health_answers_without_a_key(server):
    status, health = get(f"{server.root}/health")
    assert status == 200
    assert health["status"] == "ok" and health["pair"] == "tiny-base + tiny-aligned"
    assert health["running"] == health["waiting"] == 0


# --- errors -------------------------------------------------------------------------------

LONG_PROMPT = " ".join(["the cat sat on the mat"] * 150)  # ~900 tokens, over --ctx 512

BAD_REQUESTS = {
    "bad JSON": (b'{"model": "tiny-base", "messages": [', None, "not valid JSON"),
    "not an object": (b"[1, 2]", None, "JSON object"),
    "missing messages": ({"model": "tiny-base"}, "messages", "messages is missing"),
    "empty messages": ({"messages": []}, "messages", "non-empty list"),
    "ends with the assistant": (
        {"messages": [{"role": "assistant", "content": "hi"}]},
        "messages",
        "end with a user message",
    ),
    "unknown role": ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role", "tool"),
    "image content": (
        {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
        "messages[0].content",
        "text",
    ),
    "user message without content": (
        {"messages": [{"role": "user"}]},
        "messages[0].content",
        "without content",
    ),
    "user message with null content": (
        {"messages": [{"role": "user", "content": None}]},
        "messages[0].content",
        "without content",
    ),
    "max_tokens as text": ({"messages": HELLO, "max_tokens": "5"}, "max_tokens", "'5'"),
    "temperature as a word": (
        {"messages": HELLO, "temperature": "hot"},
        "temperature",
        "not a number",
    ),
    "unknown router": ({"messages": HELLO, "router": "p-pucn"}, "router", "Did you mean 'p-punc'"),
    "unknown router in the model id": (
        {"model": "tiny-base:nope", "messages": HELLO},
        "model",
        "Unknown router 'nope'",
    ),
    "gamma out of range": ({"messages": HELLO, "gamma": 3}, "gamma", "out of range"),
    "gamma for a router without one": (
        {"messages": HELLO, "router": "punc", "gamma": 0.5},
        "gamma",
        "has no gamma",
    ),
    "temperature out of range": ({"messages": HELLO, "temperature": 9}, "temperature", "[0, 5]"),
    "max_tokens zero": ({"messages": HELLO, "max_tokens": 0}, "max_tokens", "positive"),
    "n zero": ({"messages": HELLO, "n": 0}, "n", "n must be"),
    "stop not text": ({"messages": HELLO, "stop": 5}, "stop", "stop must be"),
    "stream not a flag": ({"messages": HELLO, "stream": "yes"}, "stream", "true or false"),
    "ignore_eos not a flag": ({"messages": HELLO, "ignore_eos": 1}, "ignore_eos", "true or false"),
    "prompt over the context": (
        {"messages": [{"role": "user", "content": LONG_PROMPT}]},
        "messages",
        "context holds 512",
    ),
}


@pytest.mark.parametrize("case", BAD_REQUESTS)
def test_a_bad_chat_request_gets_400_naming_the_field(server, case):
    body, param, words = BAD_REQUESTS[case]
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, answer = post(f"{server.url}/chat/completions", raw)
    assert status == 400
    error = answer["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert words in error["message"] and "Traceback" not in error["message"]


@pytest.mark.parametrize("stream", [False, True])
def test_a_prompt_over_the_context_is_a_400_also_when_streaming(server, stream):
    with pytest.raises(openai.BadRequestError) as caught:
        client_for(server).completions.create(
            model="tiny-base", prompt=LONG_PROMPT, max_tokens=4, stream=stream
        )
    assert caught.value.body["param"] == "prompt"


def test_unknown_paths_and_methods_get_openai_style_errors(server):
    assert get(f"{server.url}/nowhere")[0] == 404
    status, answer = get(f"{server.url}/chat/completions")
    assert status == 405 and answer["error"]["message"]


def test_unknown_openai_fields_are_ignored(server):
    response = client_for(server).chat.completions.create(
        model="gpt-4o",
        messages=HELLO,
        max_tokens=4,
        extra_body={"logit_bias": {}, "user": "someone", "parallel_tool_calls": False},
        frequency_penalty=0.5,
    )
    assert response.choices[0].message.content is not None


# --- the API key, and a client that leaves --------------------------------------------------


def test_the_api_key_guards_every_route_but_health(keyed_server):
    with pytest.raises(openai.AuthenticationError):
        client_for(keyed_server).models.list()
    with pytest.raises(openai.AuthenticationError) as caught:
        client_for(keyed_server, api_key="wrong").chat.completions.create(
            model="x", messages=HELLO, max_tokens=2
        )
    assert caught.value.body["code"] == "invalid_api_key"
    assert get(f"{keyed_server.root}/health")[0] == 200
    assert client_for(keyed_server, api_key=KEY).models.list().data


def test_a_client_that_leaves_mid_stream_frees_the_pair_for_the_next(keyed_server):
    client = client_for(keyed_server, api_key=KEY, timeout=120)
    # An answer of 30000 tokens would take minutes on the tiny pair; leave after a few.
    stream = client.chat.completions.create(
        model="x", messages=HELLO, max_tokens=30000, stream=True, extra_body={"lead": 0}
    )
    received = 0
    for chunk in stream:
        received += bool(chunk.choices and chunk.choices[0].delta.content)
        if received >= 3:
            break
    stream.close()
    # The next request gets the pair once the abandoned answer is cancelled (a timeout,
    # not a timing claim: without the cancel it would wait minutes and fail here).
    quick = client_for(keyed_server, api_key=KEY, timeout=60)
    response = quick.chat.completions.create(model="x", messages=HELLO, max_tokens=5)
    assert response.choices[0].finish_reason in ("stop", "length")
    assert get(f"{keyed_server.root}/health")[1]["waiting"] == 0


def test_a_client_that_gives_up_while_waiting_leaves_the_queue(keyed_server):
    client = client_for(keyed_server, api_key=KEY, timeout=120)
    stream = client.chat.completions.create(
        model="x", messages=HELLO, max_tokens=30000, stream=True, extra_body={"lead": 0}
    )
    next(iter(stream))  # the pair is busy with a long answer
    impatient = client_for(keyed_server, api_key=KEY, timeout=2)
    with pytest.raises(openai.APITimeoutError):
        impatient.chat.completions.create(model="x", messages=HELLO, max_tokens=5)
    deadline = time.monotonic() + 60
    while get(f"{keyed_server.root}/health")[1]["waiting"] > 0:
        assert time.monotonic() < deadline, "the abandoned request kept its place"
    stream.close()


def test_a_router_the_pair_cannot_run_is_a_400_naming_the_router(tmp_path_factory, tiny):
    args = ["--base", str(tiny.base), "--aligned", str(tiny.small_vocab), "--ctx", "512"]
    server = start_server(args, tmp_path_factory.mktemp("serve-two-vocabularies"))
    try:
        client = openai.OpenAI(base_url=server.url, api_key="-")
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(
                model="x",
                messages=[{"role": "user", "content": "hi"}],
                max_tokens=4,
                extra_body={"router": "ensemble"},
            )
        assert caught.value.body["param"] == "router"
        assert "one vocabulary" in caught.value.body["message"]
        answer = client.chat.completions.create(  # and the pair answers word by word
            model="x", messages=[{"role": "user", "content": "hi"}], max_tokens=6, seed=1
        )
        assert answer.choices[0].message.content
    finally:
        stop_server(server)

"""`baco serve --parallel N`: requests answered together in one batch, as clients see it.

A long answer is streaming when a second request arrives: with --parallel 1 the second
would wait minutes for the first (the long tiny pair writes 30000 tokens); here it is
answered while the first goes on, and each answer is the one it would have been alone.
"""

from __future__ import annotations

import json
import threading
import urllib.request

import openai
import pytest
from serve_process import start_server, stop_server, streamed_text

HELLO = [{"role": "user", "content": "Tell me about the cat."}]
LONG = dict(max_tokens=30000, extra_body={"lead": 0}, seed=3)


@pytest.fixture(scope="module")
def parallel_server(long_tiny, tmp_path_factory):
    base, aligned = long_tiny
    args = ["--base", str(base), "--aligned", str(aligned), "--ctx", "32768", "--parallel", "4"]
    process = start_server(args, tmp_path_factory.mktemp("serve-parallel"))
    yield process
    assert stop_server(process) == 0, process.log()


def client_for(server, timeout=120) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key="-", max_retries=0, timeout=timeout)


def health(server) -> dict:
    with urllib.request.urlopen(f"{server.root}/health", timeout=60) as response:
        return json.loads(response.read())


def test_health_says_how_many_requests_run_at_once(parallel_server):
    report = health(parallel_server)
    assert report["parallel"] == 4
    assert report["running"] == report["waiting"] == report["answers_decoding"] == 0


def test_a_second_client_is_answered_while_the_first_streams(parallel_server):
    client = client_for(parallel_server)
    solo = client.chat.completions.create(
        model="x", messages=HELLO, max_tokens=12, temperature=0, seed=1
    )
    long = client.chat.completions.create(model="x", messages=HELLO, stream=True, **LONG)
    chunks = iter(long)
    first = [next(chunks) for _ in range(3)]
    assert health(parallel_server)["running"] == 1
    # Greedy, while a sampled answer decodes in the same batch: the answer it is alone.
    during = client.chat.completions.create(
        model="x", messages=HELLO, max_tokens=12, temperature=0, seed=1
    )
    more = [next(chunks) for _ in range(3)]  # the long answer went on meanwhile
    long.close()
    assert during.choices[0].message.content == solo.choices[0].message.content
    assert during.choices[0].finish_reason == "length"
    assert all(c.choices[0].finish_reason is None for c in first + more)


def test_a_client_that_leaves_does_not_disturb_the_other(parallel_server):
    client = client_for(parallel_server)
    kw = dict(model="x", messages=HELLO, max_tokens=40, seed=11, extra_body={"lead": 0})
    solo = client.chat.completions.create(**kw).choices[0].message.content

    texts: list[str] = []
    started = threading.Event()

    def steady() -> None:
        texts.append(streamed_text(client, started, **kw))

    leaver = client.chat.completions.create(model="x", messages=HELLO, stream=True, **LONG)
    leaving = iter(leaver)
    next(leaving)
    thread = threading.Thread(target=steady)
    thread.start()
    assert started.wait(timeout=120)
    leaver.close()  # the client disconnects mid-answer
    thread.join(timeout=120)
    assert not thread.is_alive()
    # The seeded answer that shared the batch with an answer that was cut off is the
    # answer it is alone.
    assert texts == [solo]
    with urllib.request.urlopen(f"{parallel_server.root}/health", timeout=60) as response:
        assert response.status == 200

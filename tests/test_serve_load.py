"""`baco serve` under load and at shutdown: a bounded queue that refuses rather than
hangs, and Ctrl-C that ends the answer in progress with what it has and exits 0."""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.request

import openai
import pytest
from serve_process import start_server, stop_server

CLIENTS, REQUESTS_EACH, QUEUE = 16, 3, 2
HELLO = [{"role": "user", "content": "Tell me about the cat."}]


def ask(client: openai.OpenAI, stream: bool) -> str:
    """One request: "answered" (in full, with a finish reason) or "refused" (429)."""
    try:
        if not stream:
            response = client.chat.completions.create(model="x", messages=HELLO)
            ok = response.choices and response.choices[0].finish_reason in ("stop", "length")
            return "answered" if ok else "incomplete"
        finish = None
        for chunk in client.chat.completions.create(model="x", messages=HELLO, stream=True):
            for choice in chunk.choices:
                finish = choice.finish_reason or finish
        return "answered" if finish in ("stop", "length") else "incomplete"
    except openai.RateLimitError as error:
        ok = error.body["type"] == "rate_limit_error" and error.body["code"] == "queue_full"
        return "refused" if ok else "bad 429 body"
    except Exception as error:  # a timeout, a 500, a broken stream: all count as failures
        return f"failed: {type(error).__name__}: {error}"


@pytest.mark.parametrize("parallel", [1, 4])
def test_16_clients_are_answered_or_refused_never_left_hanging(tiny, tmp_path, parallel):
    args = ["--base", str(tiny.base), "--aligned", str(tiny.aligned), "--ctx", "512"]
    args += ["--parallel", str(parallel), "--queue", str(QUEUE), "--max-tokens", "24"]
    server = start_server(args, tmp_path)
    outcomes: list[str] = []
    start = threading.Barrier(CLIENTS)

    def client_thread(i: int) -> None:
        client = openai.OpenAI(base_url=server.url, api_key="-", max_retries=0, timeout=120)
        start.wait()
        for j in range(REQUESTS_EACH):
            outcomes.append(ask(client, stream=(i + j) % 2 == 1))

    try:
        threads = [threading.Thread(target=client_thread, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
        assert not any(t.is_alive() for t in threads), "a client hung"
        counts = {kind: outcomes.count(kind) for kind in sorted(set(outcomes))}
        print(
            f"\nload test: {CLIENTS} clients x {REQUESTS_EACH} requests, --parallel {parallel}, "
            f"--queue {QUEUE}: {counts}"
        )
        assert len(outcomes) == CLIENTS * REQUESTS_EACH
        assert set(counts) <= {"answered", "refused"}, counts
        assert counts.get("answered", 0) >= 1
        # Healthy afterwards: nothing waiting, and the next request is answered.
        with urllib.request.urlopen(f"{server.root}/health", timeout=60) as response:
            assert response.status == 200
        calm = openai.OpenAI(base_url=server.url, api_key="-", max_retries=0, timeout=60)
        assert ask(calm, stream=False) == "answered"
    finally:
        code = stop_server(server)
    assert code == 0, server.log()


def test_ctrl_c_ends_the_answer_in_progress_and_exits_0(long_tiny, tmp_path):
    base, aligned = long_tiny
    server = start_server(
        ["--base", str(base), "--aligned", str(aligned), "--ctx", "32768", "--parallel", "1"],
        tmp_path,
    )
    client = openai.OpenAI(base_url=server.url, api_key="-", max_retries=0, timeout=120)
    try:
        # A long answer is streaming, and a second request waits its turn.
        stream = client.chat.completions.create(
            model="x", messages=HELLO, max_tokens=30000, stream=True, extra_body={"lead": 0}
        )
        chunks = iter(stream)
        next(chunks)
        waiting: list = []
        queued = threading.Thread(target=lambda: waiting.append(ask(client, stream=False)))
        queued.start()
        deadline = time.monotonic() + 60
        while get_health(server)["waiting"] < 1:
            assert time.monotonic() < deadline, "the second request never queued"
        server.process.send_signal(signal.SIGINT)  # as Ctrl-C sends
        rest = list(chunks)  # the stream ends properly, with a finish chunk
        queued.join(timeout=120)
        code = server.process.wait(timeout=60)
    finally:
        stop_server(server)
    finish = rest[-1]
    assert finish.choices[0].finish_reason == "stop"
    assert finish.model_extra["baco"]["finish_reason"] == "cancelled"
    assert waiting and "InternalServerError" in waiting[0] and "shutting down" in waiting[0]
    assert code == 0
    assert "Traceback" not in server.log() and "stopped" in server.log()


@pytest.mark.parametrize("stream", [False, True])
def test_ctrl_c_answers_a_request_none_of_whose_answers_began_with_503(long_tiny, tmp_path, stream):
    """A request on a worker whose answers still wait for a sequence in the batch is a
    waiting request: at Ctrl-C it gets the 503, not a 200 with no choices."""
    base, aligned = long_tiny
    server = start_server(
        ["--base", str(base), "--aligned", str(aligned), "--ctx", "32768", "--parallel", "2"],
        tmp_path,
    )
    client = openai.OpenAI(base_url=server.url, api_key="-", max_retries=0, timeout=120)
    try:
        # Two long answers hold both sequences; the next request's answer waits for one.
        chunks = iter(
            client.chat.completions.create(
                model="x",
                messages=HELLO,
                n=2,
                max_tokens=30000,
                stream=True,
                extra_body={"lead": 0},
            )
        )
        next(chunks)
        waiting: list = []
        queued = threading.Thread(target=lambda: waiting.append(ask(client, stream=stream)))
        queued.start()
        deadline = time.monotonic() + 60
        # on a worker (not in the host's queue), its answer waiting for a sequence
        while (health := get_health(server))["running"] < 2 or health["answers_waiting"] < 1:
            assert time.monotonic() < deadline, "the second request's answer never waited"
        server.process.send_signal(signal.SIGINT)
        list(chunks)
        queued.join(timeout=120)
        code = server.process.wait(timeout=60)
    finally:
        stop_server(server)
    assert waiting and "InternalServerError" in waiting[0] and "shutting down" in waiting[0]
    assert code == 0 and "Traceback" not in server.log()


def get_health(server) -> dict:
    with urllib.request.urlopen(f"{server.root}/health", timeout=60) as response:
        return json.loads(response.read())

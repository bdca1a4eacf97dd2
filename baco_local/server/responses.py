"""Responses in OpenAI's shapes: a whole completion, or server-sent event chunks.

baco's finish reasons map to OpenAI's two: the model ending its turn, a stop string and
a cancelled answer are "stop"; max tokens and a full context are "length". The exact
reason stays in the `baco` extension object, with every token's source.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from ..core.events import Result
from .errors import ApiError

FINISH_REASONS = {
    "eog": "stop",
    "stop": "stop",
    "cancelled": "stop",
    "length": "length",
    "context": "length",
}


@dataclass(frozen=True)
class Reply:
    """The fixed parts of one response. kind: "chat" (/v1/chat/completions) or "text"
    (/v1/completions); model: the id of what answered, `<pair>:<router>`."""

    kind: str
    model: str
    id: str
    created: int

    @classmethod
    def new(cls, kind: str, model: str) -> Reply:
        prefix = "chatcmpl" if kind == "chat" else "cmpl"
        return cls(kind, model, f"{prefix}-{uuid.uuid4().hex}", int(time.time()))

    @property
    def object(self) -> str:
        return "chat.completion" if self.kind == "chat" else "text_completion"

    def head(self, chunk: bool = False) -> dict:
        kind = f"{self.object}.chunk" if chunk and self.kind == "chat" else self.object
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}

    def choice(self, index: int, text: str, finish: str) -> dict:
        """One entry of a whole response's `choices`."""
        content = {"text": text} if self.kind == "text" else {"message": _message(text)}
        return {"index": index, **content, "logprobs": None, "finish_reason": finish}

    def delta(self, index: int, text: str | None = None, *, role=False, finish=None) -> dict:
        """One entry of a chunk's `choices`: new text (the role with an answer's first
        chunk), or the finish reason alone."""
        if self.kind == "text":
            content = {"text": text or ""}
        else:
            content = {"delta": ({"role": "assistant"} if role else {})}
            if text is not None:
                content["delta"]["content"] = text
        return {"index": index, **content, "logprobs": None, "finish_reason": finish}


def _message(text: str) -> dict:
    return {"role": "assistant", "content": text}


def completion(reply: Reply, results: tuple[Result, ...]) -> dict:
    """The whole response: every answer, the usage, and the baco extension."""
    choices = [
        reply.choice(i, r.text, FINISH_REASONS[r.finish_reason]) for i, r in enumerate(results)
    ]
    return reply.head() | {
        "choices": choices,
        "usage": usage(results),
        "baco": extension(results, tokens=True),
    }


def usage(results: tuple[Result, ...]) -> dict:
    """OpenAI's counts. prompt_tokens: the aligned model's prompt, counted once (the base
    model reads the same conversation in its own format: both counts are in `baco`)."""
    prompt = results[0].stats.prompt_tokens.get("aligned", 0) if results else 0
    completion_tokens = sum(r.stats.tokens for r in results)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
    }


def extension(results: tuple[Result, ...], *, tokens: bool) -> dict:
    """The `baco` object: the pair, the router and gamma, and per answer its exact finish
    reason, seed, base_fraction and (with tokens) every token's text and source."""
    first = results[0] if results else None
    return {
        "pair": first.pair if first else None,
        "router": first.settings.router if first else None,
        "gamma": first.settings.gamma if first else None,
        "prompt_tokens": dict(first.stats.prompt_tokens) if first else {},
        "choices": [_answer(i, r, tokens) for i, r in enumerate(results)],
    } | _notes(first)


def _notes(result: Result | None) -> dict:
    """What the client should know about how the request was read (turns left out to
    fit the context, the pair's notes), when there is something."""
    return {"notes": list(result.notes)} if result is not None and result.notes else {}


def _answer(index: int, result: Result, tokens: bool) -> dict:
    answer = {
        "index": index,
        "finish_reason": result.finish_reason,
        "seed": result.settings.seed,
        "base_fraction": round(result.stats.base_fraction, 4),
    }
    if tokens:
        answer["tokens"] = [{"text": t.text, "source": t.source} for t in result.tokens]
    return answer


async def chunks(job, reply: Reply, include_usage: bool) -> AsyncIterator[str]:
    """Server-sent events: one chunk per token (its source in `baco`), then each answer's
    finish chunk, then the usage if asked, then `data: [DONE]`. An error after the
    response began arrives as an `error` event. Leaving early cancels the answers."""
    sent: dict[int, int] = {}  # answer index -> characters sent
    try:
        async for event in job.events():
            if event.text:
                yield _text_chunk(reply, event.answer, event.text, sent, event.source)
        for i, result in enumerate(job.results):
            rest = result.text[sent.get(i, 0) :]  # text held back when an answer was cut
            if rest or i not in sent:
                yield _text_chunk(reply, i, rest, sent)
            end = reply.delta(i, finish=FINISH_REASONS[result.finish_reason])
            yield _sse(reply.head(chunk=True) | {"choices": [end], "baco": _finish(i, result)})
        if include_usage:
            yield _sse(reply.head(chunk=True) | {"choices": [], "usage": usage(job.results)})
    except ApiError as error:
        yield _sse(error.body())
    except Exception as error:  # a bug: one line to the client, the traceback to the log
        logging.getLogger("uvicorn.error").exception("unexpected error while streaming")
        yield _sse(ApiError(500, f"Internal error ({type(error).__name__}).").body())
    finally:
        job.cancel()  # the client left (or the answers are done: then a no-op)
    yield "data: [DONE]\n\n"


def _text_chunk(reply: Reply, index: int, text: str, sent: dict, source=None) -> str:
    choice = reply.delta(index, text, role=index not in sent)
    sent[index] = sent.get(index, 0) + len(text)
    extra = {} if source is None else {"baco": {"source": source}}
    return _sse(reply.head(chunk=True) | {"choices": [choice]} | extra)


def _finish(index: int, result: Result) -> dict:
    """An answer's last chunk: what the whole response's `baco` object says of it (all
    but its tokens, which went one per chunk)."""
    return (
        _answer(index, result, tokens=False)
        | {
            "pair": result.pair,
            "router": result.settings.router,
            "gamma": result.settings.gamma,
            "prompt_tokens": dict(result.stats.prompt_tokens),
        }
        | _notes(result)
    )


def _sse(data: dict) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

"""Requests: OpenAI's JSON bodies parsed into one frozen GenerationRequest each.

Every check names the field it failed on (OpenAI's `param`). Fields OpenAI clients send
that do not apply here (logprobs, tools, user, ...) are ignored, as the issue asks.
Every GenerationSettings field rides along under its own name (router, gamma, lead,
min_p, top_k, repeat_penalty, speculative, ...). A model id `<pair>:<router>` picks the
router too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..core.settings import GenerationSettings
from ..core.settings_fields import generation_fields
from ..errors import PromptError, SettingsError
from ..pairs.prompt_formats import Message, to_messages
from .errors import from_baco_error, invalid

MAX_ANSWERS = 16  # n at most: answers run one after another on one pair

# Message roles OpenAI clients send, as the roles baco knows ("developer" is the new "system").
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}

# Every GenerationSettings field is a request field of the same name (settings_fields.py);
# `max_completion_tokens` is OpenAI's newer name for max_tokens.
MAX_TOKENS_ALIASES = ("max_tokens", "max_completion_tokens")  # the newer name wins


@dataclass(frozen=True)
class GenerationRequest:
    """What one request asks of the pair.

    prompt: the conversation (chat) or the raw text (completions, with raw=True).
    prompt_param: the field a prompt error names ("messages" or "prompt").
    include_usage: stream a last chunk with the token counts (stream_options).
    ignore_eos: write max_tokens tokens past end-of-turn and stop strings (`ignore_eos`,
    as llama.cpp's server and vLLM take it: load tests and benchmarks).
    """

    prompt: str | tuple[Message, ...]
    raw: bool
    settings: GenerationSettings
    n: int
    stream: bool
    include_usage: bool
    prompt_param: str
    ignore_eos: bool = False


def parse_chat(body: bytes, defaults: GenerationSettings, model_id: str) -> GenerationRequest:
    """A /v1/chat/completions body."""
    fields = _json_object(body)
    return GenerationRequest(
        prompt=_messages(fields.get("messages")),
        raw=False,
        settings=_settings(fields, defaults, model_id),
        n=_n(fields.get("n")),
        stream=_flag(fields, "stream"),
        include_usage=_include_usage(fields),
        prompt_param="messages",
        ignore_eos=_flag(fields, "ignore_eos"),
    )


def parse_completion(body: bytes, defaults: GenerationSettings, model_id: str) -> GenerationRequest:
    """A /v1/completions body: the prompt goes unchanged to both models (like `--raw`)."""
    fields = _json_object(body)
    return GenerationRequest(
        prompt=_raw_prompt(fields.get("prompt")),
        raw=True,
        settings=_settings(fields, defaults, model_id),
        n=_n(fields.get("n")),
        stream=_flag(fields, "stream"),
        include_usage=_include_usage(fields),
        prompt_param="prompt",
        ignore_eos=_flag(fields, "ignore_eos"),
    )


def router_from_model(model, model_id: str) -> str | None:
    """The router a model id names: `gemma-3-270m:p-punc` -> "p-punc"; else None."""
    prefix = f"{model_id}:"
    if isinstance(model, str) and model.startswith(prefix):
        return model[len(prefix) :]
    return None


# --- the parts of a body ----------------------------------------------------------------


def _json_object(body: bytes) -> dict:
    try:
        fields = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise invalid(
            f"The request body is not valid JSON ({error}). Send a JSON object with "
            "Content-Type: application/json."
        ) from None
    if not isinstance(fields, dict):
        raise invalid("The request body must be a JSON object.")
    return fields


def _messages(value) -> tuple[Message, ...]:
    if value is None:
        raise invalid(
            "messages is missing: send a list of {role, content} objects ending with the "
            "user's message.",
            "messages",
        )
    if not isinstance(value, list) or not value:
        raise invalid("messages must be a non-empty list of {role, content} objects.", "messages")
    messages = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise invalid(f"messages[{i}] must be an object with role and content.", "messages")
        role = ROLES.get(item.get("role"))
        if role is None:
            raise invalid(
                f"messages[{i}] has role {item.get('role')!r}; use system, user or assistant.",
                f"messages[{i}].role",
            )
        if role == "user" and item.get("content") is None:
            raise invalid(
                f"messages[{i}] is a user message without content: give its text.",
                f"messages[{i}].content",
            )
        messages.append(Message(role, _text(item.get("content"), f"messages[{i}].content")))
    try:
        return to_messages(messages)
    except PromptError as error:
        raise from_baco_error(error, "messages") from None


def _text(content, param: str) -> str:
    """A message's content: a string, or a list of text parts ({"type": "text", "text"})."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        for p in content
    ):
        return "\n".join(p["text"] for p in content)
    raise invalid(f"{param} must be text (a string or a list of text parts).", param)


def _raw_prompt(value) -> str:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, str) or not value.strip():
        raise invalid(
            "prompt must be one non-empty string (lists of prompts and token ids are not "
            "supported).",
            "prompt",
        )
    return value


def _settings(fields: dict, defaults: GenerationSettings, model_id: str) -> GenerationSettings:
    """The server's defaults with the request's changes, applied one field at a time so
    that an invalid value names its own field."""
    changes: list[tuple[str, object, str]] = []  # (settings field, value, request field)
    router = router_from_model(fields.get("model"), model_id)
    if router is not None:
        changes.append(("router", router, "model"))
    for setting in generation_fields():  # the router first: it resets gamma
        if setting.name == "max_tokens":
            changes += [("max_tokens", fields.get(name), name) for name in MAX_TOKENS_ALIASES]
        elif setting.repeated:
            changes.append((setting.name, _stop(fields.get(setting.name)), setting.name))
        else:
            changes.append((setting.name, fields.get(setting.name), setting.name))
    settings = defaults
    for field, value, param in changes:
        if value is None:
            continue
        try:
            settings = settings.with_changes(**{field: value})
        except SettingsError as error:
            raise from_baco_error(error, param) from None
    return settings


def _stop(value) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return tuple(value)
    raise invalid("stop must be a string or a list of strings.", "stop")


def _n(value) -> int:
    if value is None:
        return 1
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_ANSWERS:
        raise invalid(f"n must be a whole number from 1 to {MAX_ANSWERS} (got {value!r}).", "n")
    return value


def _flag(fields: dict, name: str) -> bool:
    value = fields.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise invalid(f"{name} must be true or false (got {value!r}).", name)
    return value


def _include_usage(fields: dict) -> bool:
    options = fields.get("stream_options")
    if options is None:
        return False
    if not isinstance(options, dict):
        raise invalid("stream_options must be an object.", "stream_options")
    return _flag(options, "include_usage")

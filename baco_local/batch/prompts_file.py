"""The input of `baco batch`: one JSON object per line.

    {"id": "q1", "prompt": "Name a colour"}
    {"id": "q2", "messages": [{"role": "user", "content": "..."}], "n": 3, "temperature": 1.2}

`id` (a string or a number, unique in the file), then `prompt` or `messages`, then any
GenerationSettings field (router, gamma, temperature, top_k, min_p, top_p, max_tokens,
stop, seed, lead, ...) and `n`, which override the command's options for that line.
A line that cannot be used is a LineError naming its number; the others are unaffected.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from ..core.settings import GenerationSettings
from ..decoding.requests_many import Request
from ..errors import BacoError
from ..pairs.prompt_formats import Message, to_messages

SETTING_NAMES = frozenset(f.name for f in fields(GenerationSettings))
ROLES = ("system", "user", "assistant")
MAX_ANSWERS = 1000


@dataclass(frozen=True)
class LineError:
    """A line that cannot be answered: its number (from 1) and why."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class Defaults:
    """What a line leaves out: the command's settings, n and raw."""

    settings: GenerationSettings
    n: int = 1
    raw: bool = False
    system: str | None = None
    # the seed each line's answers in the output file were made with: a line without a
    # seed of its own continues with it rather than drawing another
    seeds: Mapping[str, int] = field(default_factory=dict)


def read_requests(path: Path, defaults: Defaults) -> Iterator[Request | LineError]:
    """Each non-blank line of the file as a Request, or a LineError; ids are unique."""
    seen: dict[str, int] = {}
    try:
        handle = open(path, encoding="utf-8")  # noqa: SIM115 (the with below closes it)
    except OSError as error:
        raise BacoError(
            f"Cannot read the prompts file {path}: {error.strerror}.",
            'give a JSON Lines file: one {"id", "prompt"} object per line',
        ) from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            item = parse_line(line, number, defaults)
            if isinstance(item, Request):
                if item.id in seen:
                    item = LineError(number, f"id {item.id!r} is used on line {seen[item.id]} too")
                else:
                    seen[item.id] = number
            yield item


def parse_line(line: str, number: int, defaults: Defaults) -> Request | LineError:
    """One line as a Request, or a LineError saying what is wrong with it."""
    try:
        fields_ = json.loads(line)
    except json.JSONDecodeError as error:
        return LineError(number, f"not JSON ({error.msg} at column {error.colno})")
    if not isinstance(fields_, dict):
        return LineError(number, 'not a JSON object; write {"id": ..., "prompt": ...}')
    try:
        return _request(fields_, defaults)
    except _Bad as error:
        return LineError(number, str(error))
    except BacoError as error:  # a setting out of range, an empty prompt
        hint = f" ({error.hint})" if error.hint else ""
        return LineError(number, f"{error.message}{hint}")


class _Bad(Exception):
    pass


def _request(fields_: dict, defaults: Defaults) -> Request:
    known = SETTING_NAMES | {"id", "prompt", "messages", "n", "raw", "system"}
    unknown = sorted(set(fields_) - known)
    if unknown:
        raise _Bad(
            f"unknown field {unknown[0]!r}; a line may hold id, prompt or messages, n, raw, "
            "system and these settings: " + ", ".join(sorted(SETTING_NAMES))
        )
    request_id = _id(fields_.get("id"))
    messages = _messages(fields_, defaults.system)
    n = fields_.get("n", defaults.n)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_ANSWERS:
        raise _Bad(f"n must be a whole number from 1 to {MAX_ANSWERS} (got {n!r})")
    raw = fields_.get("raw", defaults.raw)
    if not isinstance(raw, bool):
        raise _Bad(f"raw must be true or false (got {raw!r})")
    settings = _settings(fields_, defaults.settings, defaults.seeds.get(request_id))
    return Request(request_id, messages, settings, n=n, raw=raw)


def _id(value) -> str:
    if value is None or value == "":
        raise _Bad('id is missing; give each line an "id" (a string or a number)')
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _Bad(f"id must be a string or a whole number (got {json.dumps(value)})")
    return str(value)


def _messages(fields_: dict, system: str | None) -> tuple[Message, ...]:
    prompt, messages = fields_.get("prompt"), fields_.get("messages")
    if prompt is None and messages is None:
        raise _Bad('the prompt is missing: give "prompt" (a string) or "messages" (a list)')
    if prompt is not None and messages is not None:
        raise _Bad('give either "prompt" (a string) or "messages" (a list), not both')
    system = fields_.get("system", system)
    if system is not None and not isinstance(system, str):
        raise _Bad("system must be a string")
    if prompt is not None:
        if not isinstance(prompt, str):
            raise _Bad("prompt must be a string")
        if not prompt.strip():
            raise _Bad("the prompt is empty; give some text to answer")
        return to_messages(prompt, system)
    if not isinstance(messages, list) or not messages:
        raise _Bad('messages must be a non-empty list of {"role", "content"} objects')
    parsed = []
    for i, item in enumerate(messages):
        if not (
            isinstance(item, dict)
            and item.get("role") in ROLES
            and isinstance(item.get("content"), str)
        ):
            raise _Bad(f'messages[{i}] must be {{"role": system|user|assistant, "content": text}}')
        parsed.append(Message(item["role"], item["content"]))
    if parsed[-1].role == "user" and not parsed[-1].content.strip():
        raise _Bad("the last user message is empty; give some text to answer")
    return to_messages(parsed, system)


def _settings(
    fields_: dict, defaults: GenerationSettings, written_seed: int | None = None
) -> GenerationSettings:
    changes = {name: fields_[name] for name in SETTING_NAMES if name in fields_}
    stop = changes.get("stop")
    if isinstance(stop, str):
        changes["stop"] = (stop,)
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        changes["stop"] = tuple(stop)
    elif stop is not None:
        raise _Bad("stop must be a string or a list of strings")
    for name, value in changes.items():
        if name != "stop" and isinstance(value, (list, dict)):
            raise _Bad(f"{name} must be a single value (got {json.dumps(value)})")
    try:
        settings = defaults.with_changes(**changes)
    except BacoError:  # a value out of range, an unknown router: its own message and hint
        raise
    except (TypeError, ValueError):  # a value of the wrong type, e.g. "temperature": "hot"
        kinds = ", ".join(f"{k}={json.dumps(v)}" for k, v in changes.items())
        raise _Bad(f"a setting has a value of the wrong type ({kinds})") from None
    if settings.seed is None:  # each line replays by the seed its answers record
        seed = written_seed if written_seed is not None else random.SystemRandom().randrange(2**31)
        settings = settings.with_changes(seed=seed)
    return settings

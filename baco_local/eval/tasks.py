"""Prompt sets: three built-in tasks, and NoveltyBench-style JSONL files.

Built-in tasks (30 original prompts each, shipped as package data in `prompts/`):
- `instructions`: short open-ended requests (names, ideas, jokes, recommendations);
- `dialogue`: conversational user turns, as a person would type them in a chat;
- `stories`: openings of long-form narratives.

A prompt file is JSON Lines, one object a line: `id` (text), `prompt` (text) and an
optional `category`, the shape of NoveltyBench's `curated.jsonl` and `wildchat-1k.jsonl`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import BacoError, unknown_name_error

BUILTIN_TASKS = {
    "instructions": "short open-ended instructions: names, ideas, jokes, recommendations",
    "dialogue": "dialogue turns: what a person types in a chat",
    "stories": "long-form story openings",
}


@dataclass(frozen=True)
class PromptItem:
    """One prompt of a task. id is unique within its task."""

    task: str
    id: str
    prompt: str
    category: str | None = None


def builtin_prompts(task: str) -> list[PromptItem]:
    """The prompts of a built-in task, in file order."""
    if task not in BUILTIN_TASKS:
        raise unknown_name_error("task", task, BUILTIN_TASKS, "baco eval --help")
    from importlib.resources import files

    text = files(__package__).joinpath("prompts", f"{task}.jsonl").read_text(encoding="utf-8")
    return _parse_lines(text.splitlines(), task, f"built-in task {task!r}")


def load_prompt_file(path: str | os.PathLike, task: str | None = None) -> list[PromptItem]:
    """Read a NoveltyBench-style JSONL file; the task is named after the file unless given."""
    path = Path(path).expanduser()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise BacoError(
            f"Prompt file not found: {path}", "give the path of a .jsonl file with --prompts"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise BacoError(
            f"Cannot read prompt file {path}: {e}.", "give a UTF-8 JSON Lines file"
        ) from None
    items = _parse_lines(lines, task or path.stem, str(path))
    if not items:
        raise BacoError(f"{path} has no prompts.", 'add lines like {"id": "1", "prompt": "..."}')
    return items


def select_prompts(
    tasks: list[str], prompt_files: list[str], limit: int | None
) -> list[PromptItem]:
    """The prompts to evaluate: the first `limit` of each task (None: all)."""
    groups = [builtin_prompts(t) for t in tasks]
    groups += [load_prompt_file(p) for p in prompt_files]
    names = [g[0].task for g in groups if g]
    if len(set(names)) != len(names):
        raise BacoError(
            f"Two prompt sets share a task name ({', '.join(names)}).",
            "rename one of the prompt files: the task is named after the file",
        )
    return [item for group in groups for item in group[:limit]]


def _parse_lines(lines: list[str], task: str, where: str) -> list[PromptItem]:
    items, seen = [], set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        item = _parse_line(line, number, task, where)
        if item.id in seen:
            raise BacoError(
                f"{where}, line {number}: the id {item.id!r} appears twice.",
                "give every prompt its own id",
            )
        seen.add(item.id)
        items.append(item)
    return items


def _parse_line(line: str, number: int, task: str, where: str) -> PromptItem:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise BacoError(
            f"{where}, line {number} is not valid JSON ({e.msg}).",
            'write one object a line, like {"id": "1", "prompt": "..."}',
        ) from None
    prompt = row.get("prompt") if isinstance(row, dict) else None
    if not isinstance(prompt, str) or not prompt.strip():
        raise BacoError(
            f"{where}, line {number} has no 'prompt' text.",
            'each line needs a "prompt" field with the text to answer',
        )
    ident = row.get("id", f"{task}-{number}")
    category = row.get("category")
    return PromptItem(task, str(ident), prompt, None if category is None else str(category))

"""Export a stored session to Markdown or JSON, written atomically next to the sessions.

`session_markdown` and `session_json` are pure (records in, text/dict out); `export_session`
reads the store and writes `<data dir>/exports/<id>-<slug>.<ext>` via a temporary file
and os.replace, so an export is never left half-written.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict
from pathlib import Path

from baco_local.errors import BacoError
from baco_local.files import write_atomic

from .store import MessageRecord, SessionRecord, SessionStore, VoteRecord
from .tally import tally

FORMATS = {"markdown": "md", "json": "json"}


def format_time(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


def describe_answer(meta: dict) -> str:
    """'p-punc γ0.50 · 62% base · seed 7' from an answer's stored meta."""
    parts = []
    if meta.get("router"):
        gamma = meta.get("gamma")
        parts.append(meta["router"] + ("" if gamma is None else f" γ{gamma:.2f}"))
    stats = meta.get("stats") or {}
    if "base_fraction" in stats:
        parts.append(f"{stats['base_fraction']:.0%} base")
    if meta.get("seed") is not None:
        parts.append(f"seed {meta['seed']}")
    if meta.get("finish_reason") == "stop":  # a stop string ended it (else "eog")
        parts.append("stop string")
    elif meta.get("finish_reason") not in (None, "eog"):
        parts.append(meta["finish_reason"])
    return " · ".join(parts)


def session_markdown(
    session: SessionRecord, messages: list[MessageRecord], votes: list[VoteRecord]
) -> str:
    lines = [
        f"# {session.title}",
        "",
        f"*{session.kind} · {session.pair} · {format_time(session.created)}*",
        "",
    ]
    if session.system:
        lines += [f"> System: {session.system}", ""]
    answer_number = 0
    for message in messages:
        if message.role == "user":
            heading = "## Prompt" if session.kind != "chat" else "## You"
            answer_number = 0
        else:
            answer_number += 1
            heading = _answer_heading(session.kind, message, answer_number)
        lines += [heading, "", message.content.strip() or "*(empty)*", ""]
    if votes:
        lines += _votes_markdown(votes)
    return "\n".join(lines).rstrip() + "\n"


def _answer_heading(kind: str, message: MessageRecord, number: int) -> str:
    name = {"chat": "BACo", "brainstorm": f"Answer {number}"}.get(kind)
    if name is None:
        name = f"Answer {message.meta.get('label', number)}"
    star = " ★" if message.favourite else ""
    unfinished = " (interrupted)" if not message.complete else ""
    details = describe_answer(message.meta)
    return f"## {name}{star}{unfinished}" + (f" — {details}" if details else "")


def _votes_markdown(votes: list[VoteRecord]) -> list[str]:
    lines = [
        "## Votes",
        "",
        "| prompt | quality | originality | router |",
        "| --- | --- | --- | --- |",
    ]
    for vote in votes:
        prompt = vote.prompt.replace("|", "\\|").replace("\n", " ")[:60]
        gamma = "" if vote.gamma is None else f" γ{vote.gamma:.2f}"
        lines.append(f"| {prompt} | {vote.quality} | {vote.originality} | {vote.router}{gamma} |")
    lines += [
        "",
        f"Quality: {tally(v.quality for v in votes).summary()}",
        "",
        f"Originality: {tally(v.originality for v in votes).summary()}",
        "",
    ]
    return lines


def session_json(
    session: SessionRecord, messages: list[MessageRecord], votes: list[VoteRecord]
) -> dict:
    return {
        "session": asdict(session),
        "messages": [asdict(m) | {"segments": [list(run) for run in m.segments]} for m in messages],
        "votes": [asdict(v) for v in votes],
    }


def export_session(
    store: SessionStore, session_id: int, fmt: str, folder: str | Path | None = None
) -> Path:
    """Write one session as Markdown ("markdown") or JSON ("json"); return the path."""
    if fmt not in FORMATS:
        raise BacoError(f"Unknown export format {fmt!r}.", "use markdown or json")
    session = store.session(session_id)
    messages, votes = store.messages(session_id), store.votes(session_id)
    if fmt == "markdown":
        text = session_markdown(session, messages, votes)
    else:
        text = json.dumps(session_json(session, messages, votes), ensure_ascii=False, indent=2)
    folder = Path(folder) if folder is not None else store.path.parent / "exports"
    path = folder / f"{session.id}-{_slug(session.title)}.{FORMATS[fmt]}"
    write_atomically(path, text)
    return path


def write_atomically(path: Path, text: str) -> None:
    """Write text to path whole or not at all; a failure is a readable BacoError."""
    try:
        write_atomic(path, text)
    except OSError as error:
        raise BacoError(
            f"Cannot write {path}: {error.strerror or error}.",
            "check that the folder exists and is writable",
        ) from error


def _slug(title: str, limit: int = 40) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return slug[:limit].rstrip("-") or "session"

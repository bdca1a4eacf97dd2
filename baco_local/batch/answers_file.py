"""The output of `baco batch`: one JSON object per answer, appended as each ends.

    {"id": "q1", "answer": 0, "text": "...", "seed": 7, "finish_reason": "eog",
     "router": "p-punc", "gamma": 0.35, "settings": {...}, "stats": {...},
     "tokens": [{"id": 12, "text": "Blue", "source": "aligned", "routed": true}, ...]}

A line is written whole, with one write, and flushed: a run killed mid-write leaves at
most a partial last line, which is cut off before the first new answer is appended (only
a line that starts as baco's do: anything else there is refused, never cut). Reading
the file back gives the (id, answer) pairs already done, so a rerun writes each answer
once, and what each was made with, so a rerun that would mix settings or pairs in one
file is refused. Answers stopped by Ctrl-C are not written: a rerun writes them again,
whole.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..core.events import Result
from ..errors import BacoError


class AnswersFile:
    """Appends answers to `path`; `written` maps each (id, answer index) in it to what
    that answer was made with (`made_with`)."""

    def __init__(self, path: Path, written: dict[tuple[str, int], dict], cut: int | None):
        self.path = path
        self.written = written
        # where to cut before appending: the start of a half-written last line, or the
        # end of a whole one that lacks its newline (one is added there)
        self.cut = cut
        self._handle = None
        # the seed of each line as the file was read (what earlier runs made it with)
        self.seeds = _line_seeds(written)

    @classmethod
    def open(cls, path: Path) -> AnswersFile:
        """Read what an earlier run wrote. Nothing is changed yet: a half-written last
        line is cut off, and the file opened for appending, at the first `write`."""
        written: dict[tuple[str, int], dict] = {}
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = b""
        except OSError as error:
            raise BacoError(
                f"Cannot read {path}: {error.strerror}.", "give --out a file you can write"
            ) from None
        whole = data[: data.rfind(b"\n") + 1]  # up to the last complete line
        for number, line in enumerate(whole.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                written[(str(record["id"]), int(record["answer"]))] = made_with(record)
            except (ValueError, KeyError, TypeError, AttributeError):
                raise _not_ours(path, f"line {number}") from None
        cut = None
        tail = data[len(whole) :]
        if tail:  # a last line without its newline: ours, cut short, or not ours at all
            whole_json, record = _read_tail(tail)
            if record is not None:  # a whole answer that lacks only its newline
                written[(str(record["id"]), int(record["answer"]))] = made_with(record)
                cut = len(data)
            elif not whole_json and (
                tail.startswith(RECORD_START) or RECORD_START.startswith(tail)
            ):
                cut = len(whole)  # a run was killed mid-write
            else:  # whole JSON that is not an answer (a prompts line, say), or not ours
                raise _not_ours(path, "its last line")
        if not _writable(path):
            raise BacoError(f"Cannot write {path}.", "give --out a file you can write")
        return cls(path, written, cut)

    def has(self, request_id: str, answer: int) -> bool:
        return (request_id, answer) in self.written

    def difference(self, request, pair: str | None = None) -> str | None:
        """How the answers to a request (a line) already here were made otherwise than
        with its settings (and this pair, when given): the first field that differs, or
        None."""
        now = {"pair": pair, **json.loads(json.dumps(request.settings.to_dict()))}
        if request.id not in self.seeds:  # an older file: its reruns drew fresh seeds
            now.pop("seed")
        for index in range(request.n):
            then = self.written.get((request.id, index), {})
            for name, value in now.items():
                if name in then and then[name] != value and (name != "pair" or pair):
                    return f"{name} {json.dumps(then[name])} there, {json.dumps(value)} now"
        return None

    def write(self, request_id: str, answer: int, result: Result) -> None:
        """Append one answer as one whole line."""
        self.write_record(request_id, answer, result.to_dict())

    def write_record(self, request_id: str, answer: int, result: dict) -> None:
        """Append one answer, given as Result.to_dict(), as one whole line."""
        record = {"id": request_id, "answer": answer, **result}
        handle = self._handle or self._open_for_appending()
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        handle.flush()
        self.written[(request_id, answer)] = made_with(record)

    def _open_for_appending(self):
        try:
            if self.cut is not None:  # what an interrupted run left
                with open(self.path, "r+b") as f:
                    f.truncate(self.cut)
                    if self.cut:
                        f.seek(self.cut - 1)
                        if f.read(1) != b"\n":  # a whole answer that lacked its newline
                            f.write(b"\n")
                self.cut = None
            self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (close())
        except OSError as error:
            raise BacoError(
                f"Cannot write {self.path}: {error.strerror}.", "give --out a file you can write"
            ) from None
        return self._handle

    def close(self) -> None:
        if self._handle is None or self._handle.closed:
            return
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()


RECORD_START = b'{"id": '  # how every line `write_record` writes begins


def _read_tail(line: bytes) -> tuple[bool, dict | None]:
    """(whether the line is whole JSON, the answer record it holds if it is one)."""
    try:
        record = json.loads(line)
    except ValueError:
        return False, None
    try:
        int(record["answer"]), str(record["id"])
    except (KeyError, TypeError, ValueError):
        return True, None
    return True, record


def _line_seeds(written: dict[tuple[str, int], dict]) -> dict[str, int]:
    """The seed of each line whose answers agree on one (see `made_with`). A line of a
    file from before seeds carried over (each rerun drew a fresh one) has several, and
    is left out: it is continued as it was begun."""
    found: dict[str, set] = {}
    for (request_id, _), made in written.items():
        found.setdefault(request_id, set()).add(made.get("seed"))
    return {
        request_id: seed
        for request_id, (seed,) in ((i, s) for i, s in found.items() if len(s) == 1)
        if isinstance(seed, int)
    }


def _not_ours(path: Path, where: str) -> BacoError:
    return BacoError(
        f"{path} {where} is not an answer written by baco batch.",
        "give --out a new file, or the file an earlier `baco batch` run wrote",
    )


def _writable(path: Path) -> bool:
    """Whether appending to `path` (or creating it) is allowed, without doing either."""
    if path.exists():
        return path.is_file() and os.access(path, os.W_OK)
    return os.access(path.parent if str(path.parent) else Path("."), os.W_OK)


def made_with(record: dict) -> dict:
    """What an answer record was made with: its pair and settings, with the seed of its
    line (answer i uses seed + i: the seed is the answer's less its index)."""
    settings = {"router": record.get("router"), "gamma": record.get("gamma")}
    settings.update(record.get("settings") or {})
    seed, index = record.get("seed"), record.get("answer")
    if isinstance(seed, int) and isinstance(index, int):
        settings["seed"] = seed - index
    return {"pair": record.get("pair"), **settings}

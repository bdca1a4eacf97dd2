"""The output of `baco batch`: one JSON object per answer, appended as each ends.

    {"id": "q1", "answer": 0, "text": "...", "seed": 7, "finish_reason": "eog",
     "router": "p-punc", "gamma": 0.35, "settings": {...}, "stats": {...},
     "tokens": [{"id": 12, "text": "Blue", "source": "aligned", "routed": true}, ...]}

A line is written whole, with one write, and flushed: a run killed mid-write leaves at
most a partial last line, which `AnswersFile.open` cuts off before appending. Reading
the file back gives the (id, answer) pairs already done, so a rerun writes each answer
once. Answers stopped by Ctrl-C are not written: a rerun writes them again, whole.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..core.events import Result
from ..errors import BacoError


class AnswersFile:
    """Appends answers to `path`; `done` holds the (id, answer index) pairs in it."""

    def __init__(self, path: Path, done: set[tuple[str, int]], handle):
        self.path = path
        self.done = done
        self._handle = handle

    @classmethod
    def open(cls, path: Path) -> AnswersFile:
        """Open for appending, after reading what an earlier run wrote (a half-written
        last line is cut off)."""
        done: set[tuple[str, int]] = set()
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
                done.add((str(record["id"]), int(record["answer"])))
            except (ValueError, KeyError, TypeError):
                raise BacoError(
                    f"{path} line {number} is not an answer written by baco batch.",
                    "give --out a new file, or the file an earlier `baco batch` run wrote",
                ) from None
        try:
            if len(whole) < len(data):  # a run was killed mid-line: drop the partial line
                with open(path, "r+b") as f:
                    f.truncate(len(whole))
            handle = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed by close())
        except OSError as error:
            raise BacoError(
                f"Cannot write {path}: {error.strerror}.", "give --out a file you can write"
            ) from None
        return cls(path, done, handle)

    def has(self, request_id: str, answer: int) -> bool:
        return (request_id, answer) in self.done

    def write(self, request_id: str, answer: int, result: Result) -> None:
        """Append one answer as one whole line."""
        self.write_record(request_id, answer, result.to_dict())

    def write_record(self, request_id: str, answer: int, result: dict) -> None:
        """Append one answer, given as Result.to_dict(), as one whole line."""
        record = {"id": request_id, "answer": answer, **result}
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._handle.flush()
        self.done.add((request_id, answer))

    def close(self) -> None:
        if self._handle.closed:
            return
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()

"""The run's generations file: JSON Lines, one record per work unit, keyed for resuming.

Records are appended and flushed one at a time, so an interrupted run keeps every unit
it finished. A run killed mid-write can leave a partial last line (no newline after
it): opening the store drops that one and rewrites the file whole (temp file, then
os.replace). Any other line that is not a record is refused, never dropped: the file
is then not this run's, and is left as it is.
Other files are written whole with `write_atomic`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import BacoError
from ..files import write_atomic


class RecordStore:
    """Records by key, backed by a JSONL file (created on first add)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.records: dict[str, dict] = {}
        self.dropped = 0  # unreadable lines found (and removed) on opening
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        text = self.path.read_text(encoding="utf-8", errors="replace")
        lines = text.splitlines()
        kept = []
        for number, line in enumerate(lines, start=1):
            try:
                record = json.loads(line)
                key = record["key"]
            except (json.JSONDecodeError, TypeError, KeyError):
                if number == len(lines) and not text.endswith("\n"):
                    self.dropped += 1  # a run killed mid-write
                    continue
                raise BacoError(
                    f"{self.path} line {number} is not a record written by baco eval.",
                    "give --out a folder of its own (or move this file aside)",
                ) from None
            self.records[key] = record
            kept.append(line)
        if self.dropped:
            write_atomic(self.path, "".join(f"{line}\n" for line in kept))

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def get(self, key: str) -> dict | None:
        return self.records.get(key)

    def add(self, record: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, ensure_ascii=False)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.records[record["key"]] = record

"""The run's generations file: JSON Lines, one record per work unit, keyed for resuming.

Records are appended and flushed one at a time, so an interrupted run keeps every unit
it finished. A run killed mid-write can leave a partial last line: opening the store
drops unreadable lines and rewrites the file whole (temp file, then os.replace).
Other files are written whole with `write_atomic`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

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
        lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        kept = []
        for line in lines:
            try:
                record = json.loads(line)
                key = record["key"]
            except (json.JSONDecodeError, TypeError, KeyError):
                self.dropped += 1
                continue
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

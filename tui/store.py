"""Sessions in SQLite: conversations, brainstorm sets and compare votes.

One file, `sessions.sqlite3` in the data directory (`baco_local.paths.data_dir()`), in
WAL mode. Every write is its own committed transaction, made before the app shows what
it wrote (a streamed answer is written batch by batch, marked incomplete until it ends),
so killing the app loses nothing that was on screen and never leaves a torn file.
synchronous=NORMAL: a committed write survives a killed process; only a power cut may
lose the last moments.

Several processes (two `baco chat` on one data folder) share the file: WAL lets them
read while another writes, and each write transaction takes SQLite's write lock at its
start (BEGIN IMMEDIATE), waiting up to BUSY_TIMEOUT_S for another process's write to
end, so that it never fails halfway. Each process sees the others' sessions the next
time it lists them.

Used from the app's event-loop thread only (workers post messages; handlers write).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from baco_local.errors import BacoError

FILE_NAME = "sessions.sqlite3"
BUSY_TIMEOUT_S = 30.0  # how long a write waits for another process's write (each takes ms)
SCHEMA_VERSION = 1
KINDS = ("chat", "brainstorm", "compare")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    pair TEXT NOT NULL,
    system TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    segments TEXT NOT NULL DEFAULT '[]',
    meta TEXT NOT NULL DEFAULT '{}',
    favourite INTEGER NOT NULL DEFAULT 0,
    complete INTEGER NOT NULL DEFAULT 1,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_session ON messages(session_id, id);
CREATE TABLE IF NOT EXISTS votes (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    prompt TEXT NOT NULL,
    shown_first TEXT NOT NULL,
    quality TEXT NOT NULL,
    originality TEXT NOT NULL,
    router TEXT NOT NULL,
    gamma REAL,
    seed INTEGER,
    created REAL NOT NULL
);
"""

Segments = Sequence[tuple[str, str]]  # (source, text) runs: source "base" or "aligned"


@dataclass(frozen=True)
class SessionRecord:
    id: int
    kind: str  # one of KINDS
    title: str
    pair: str
    system: str | None
    created: float  # seconds since the epoch
    updated: float
    messages: int = 0
    votes: int = 0


@dataclass(frozen=True)
class MessageRecord:
    id: int
    session_id: int
    role: str  # "user" or "assistant"
    content: str
    segments: tuple[tuple[str, str], ...]
    meta: dict = field(default_factory=dict)  # router, gamma, seed, finish_reason, stats...
    favourite: bool = False
    complete: bool = True  # False: the app stopped (or was killed) while it streamed
    created: float = 0.0


@dataclass(frozen=True)
class VoteRecord:
    id: int
    session_id: int
    prompt: str
    shown_first: str  # which answer was shown as A: "collaboration" or "aligned"
    quality: str  # "collaboration", "aligned" or "tie"
    originality: str
    router: str
    gamma: float | None
    seed: int | None
    created: float


def default_path() -> Path:
    from baco_local.paths import data_dir

    return data_dir() / FILE_NAME


class SessionStore:
    """Read and write sessions. `clock` gives timestamps (tests fix it)."""

    def __init__(self, path: str | Path | None = None, *, clock: Callable[[], float] = time.time):
        self.path = Path(path) if path is not None else default_path()
        self.clock = clock
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: transactions are only the ones _writing() opens
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            with self._writing():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except (OSError, sqlite3.Error) as error:
            raise BacoError(
                f"Cannot open the sessions file {self.path}: {error}.",
                "check that the folder is writable, or move the file aside to start afresh",
            ) from error

    # --- writing: each call is one committed transaction ------------------------------

    def create_session(self, kind: str, title: str, pair: str, system: str | None = None) -> int:
        if kind not in KINDS:
            raise ValueError(f"unknown session kind {kind!r}; expected one of {KINDS}")
        now = self.clock()
        with self._writing():
            cursor = self._db.execute(
                "INSERT INTO sessions (kind, title, pair, system, created, updated) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (kind, _title(title), pair, system, now, now),
            )
        return cursor.lastrowid

    def add_message(
        self,
        session_id: int,
        role: str,
        content: str,
        segments: Segments = (),
        meta: dict | None = None,
        *,
        complete: bool = True,
    ) -> int:
        now = self.clock()
        with self._writing():
            cursor = self._db.execute(
                "INSERT INTO messages (session_id, role, content, segments, meta, complete, "
                "created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (session_id, role, content, _dump_segments(segments), _dump(meta), complete, now),
            )
            self._touch(session_id, now)
        return cursor.lastrowid

    def update_message(
        self,
        message_id: int,
        content: str,
        segments: Segments,
        *,
        meta: dict | None = None,
        complete: bool = False,
    ) -> None:
        """Replace a (streaming) message's text; meta is kept unless given."""
        now = self.clock()
        with self._writing():
            self._db.execute(
                "UPDATE messages SET content = ?, segments = ?, complete = ?, "
                "meta = COALESCE(?, meta) WHERE id = ?",
                (
                    content,
                    _dump_segments(segments),
                    complete,
                    None if meta is None else _dump(meta),
                    message_id,
                ),
            )
            self._touch_message(message_id, now)

    def set_favourite(self, message_id: int, favourite: bool) -> None:
        with self._writing():
            self._db.execute(
                "UPDATE messages SET favourite = ? WHERE id = ?", (favourite, message_id)
            )

    def delete_messages(self, message_ids: Iterable[int]) -> None:
        ids = [(i,) for i in message_ids]
        with self._writing():
            self._db.executemany("DELETE FROM messages WHERE id = ?", ids)

    def add_vote(
        self,
        session_id: int,
        prompt: str,
        *,
        shown_first: str,
        quality: str,
        originality: str,
        router: str,
        gamma: float | None,
        seed: int | None,
    ) -> int:
        now = self.clock()
        with self._writing():
            cursor = self._db.execute(
                "INSERT INTO votes (session_id, prompt, shown_first, quality, originality, "
                "router, gamma, seed, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (session_id, prompt, shown_first, quality, originality, router, gamma, seed, now),
            )
            self._touch(session_id, now)
        return cursor.lastrowid

    def delete_session(self, session_id: int) -> None:
        with self._writing():
            self._db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))

    # --- reading ----------------------------------------------------------------------

    def sessions(self, kind: str | None = None) -> list[SessionRecord]:
        """Sessions, most recently changed first, each with its message count."""
        where, args = ("WHERE s.kind = ?", (kind,)) if kind else ("", ())
        rows = self._db.execute(
            "SELECT s.id, s.kind, s.title, s.pair, s.system, s.created, s.updated, "
            "(SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id), "
            "(SELECT COUNT(*) FROM votes v WHERE v.session_id = s.id) "
            f"FROM sessions s {where} ORDER BY s.updated DESC, s.id DESC",
            args,
        ).fetchall()
        return [SessionRecord(*row) for row in rows]

    def session(self, session_id: int) -> SessionRecord:
        for record in self._db.execute(
            "SELECT s.id, s.kind, s.title, s.pair, s.system, s.created, s.updated, "
            "(SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id), "
            "(SELECT COUNT(*) FROM votes v WHERE v.session_id = s.id) "
            "FROM sessions s WHERE s.id = ?",
            (session_id,),
        ):
            return SessionRecord(*record)
        raise BacoError(f"There is no session {session_id}.", "pick one from the sessions list")

    def messages(self, session_id: int) -> list[MessageRecord]:
        rows = self._db.execute(
            "SELECT id, session_id, role, content, segments, meta, favourite, complete, created "
            "FROM messages WHERE session_id = ? ORDER BY id",
            (session_id,),
        ).fetchall()
        return [
            MessageRecord(
                id=row[0],
                session_id=row[1],
                role=row[2],
                content=row[3],
                segments=tuple((s, t) for s, t in json.loads(row[4])),
                meta=json.loads(row[5]),
                favourite=bool(row[6]),
                complete=bool(row[7]),
                created=row[8],
            )
            for row in rows
        ]

    def messages_meta(self, message_id: int) -> dict:
        """One message's meta ({} when there is no such message)."""
        row = self._db.execute("SELECT meta FROM messages WHERE id = ?", (message_id,)).fetchone()
        return json.loads(row[0]) if row else {}

    def votes(self, session_id: int | None = None) -> list[VoteRecord]:
        where, args = ("WHERE session_id = ?", (session_id,)) if session_id else ("", ())
        rows = self._db.execute(
            "SELECT id, session_id, prompt, shown_first, quality, originality, router, gamma, "
            f"seed, created FROM votes {where} ORDER BY id",
            args,
        ).fetchall()
        return [VoteRecord(*row) for row in rows]

    def integrity(self) -> str:
        """SQLite's own check: 'ok' when the file is sound."""
        return self._db.execute("PRAGMA integrity_check").fetchone()[0]

    def close(self) -> None:
        self._db.close()

    # --- helpers ----------------------------------------------------------------------

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """One write transaction, holding the write lock from its first statement."""
        self._db.execute("BEGIN IMMEDIATE")  # waits up to BUSY_TIMEOUT_S for other writers
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _touch(self, session_id: int, now: float) -> None:
        self._db.execute("UPDATE sessions SET updated = ? WHERE id = ?", (now, session_id))

    def _touch_message(self, message_id: int, now: float) -> None:
        self._db.execute(
            "UPDATE sessions SET updated = ? WHERE id = "
            "(SELECT session_id FROM messages WHERE id = ?)",
            (now, message_id),
        )


def _title(text: str, limit: int = 80) -> str:
    """The first line of text, cut to `limit` characters."""
    first = " ".join(text.split())
    return first if len(first) <= limit else first[: limit - 1] + "…"


def _dump(meta: dict | None) -> str:
    return json.dumps(meta or {}, ensure_ascii=False)


def _dump_segments(segments: Segments) -> str:
    return json.dumps([[source, text] for source, text in segments], ensure_ascii=False)

"""Two processes on one sessions file (two `baco chat` on one data folder): both keep
everything they write, in one session they share and in their own."""

from __future__ import annotations

import subprocess
import sys

from tui.store import SessionStore

N_TURNS = 150

# One process: wait for "go", then write N turns the way the chat screen does (the user's
# message into the shared session, an answer streamed into its own session in parts).
_WRITER = """
import sys
from tui.store import SessionStore

path, name, shared, turns = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
store = SessionStore(path)
own = store.create_session("chat", name, "tiny")
print(own, flush=True)
sys.stdin.readline()
for turn in range(turns):
    store.add_message(shared, "user", f"{name} {turn}")
    answer = store.add_message(own, "assistant", "", complete=False)
    for part in range(3):
        store.update_message(answer, f"{name} answer {turn}"[: 5 + part], [("base", "x")])
    store.update_message(answer, f"{name} answer {turn}", [("aligned", "y")], complete=True)
    store.sessions()
store.close()
"""


def test_two_processes_writing_one_store_lose_nothing(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    store = SessionStore(path)
    shared = store.create_session("chat", "shared", "tiny")
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), name, str(shared), str(N_TURNS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("first", "second")
    ]
    try:
        own = [int(writer.stdout.readline()) for writer in writers]  # both are ready
        for writer in writers:
            writer.stdin.write("go\n")
            writer.stdin.flush()
        errors = [writer.communicate(timeout=300)[1] for writer in writers]
    finally:
        for writer in writers:
            writer.kill()
    assert [writer.returncode for writer in writers] == [0, 0], errors

    said = [m.content for m in store.messages(shared)]
    assert len(said) == 2 * N_TURNS
    for name in ("first", "second"):  # every turn, in the order each process wrote them
        assert [m for m in said if m.startswith(name)] == [f"{name} {t}" for t in range(N_TURNS)]
    for name, session in zip(("first", "second"), own):
        answers = store.messages(session)
        assert [m.content for m in answers] == [f"{name} answer {t}" for t in range(N_TURNS)]
        assert all(m.complete and m.segments == (("aligned", "y"),) for m in answers)
    assert {s.title for s in store.sessions()} == {"shared", "first", "second"}
    assert store.integrity() == "ok"
    store.close()

"""Killing the app in the middle of an answer never loses or corrupts what was shown.

A child process runs the real app (headless) on the tiny pair; its answer pauses after
five tokens (a slow model on demand). Once those tokens are on screen, the child writes
down what it shows and the test kills it with SIGKILL: no clean-up code runs. The
sessions file must then open cleanly and hold exactly what was on screen.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

CHILD = textwrap.dedent(
    """
    import asyncio, json, os, sys
    sys.path.insert(0, sys.argv[4])
    from baco_local import GenerationSettings, Pair
    from test_tui_app import GatedPair
    from tui.app import BacoApp

    base, aligned, report = sys.argv[1:4]

    def load():
        pair = Pair.load(base=base, aligned=aligned, n_ctx=512, n_threads=1)
        return GatedPair(pair, after=5)

    async def main():
        settings = GenerationSettings(seed=1, max_tokens=40)
        app = BacoApp(load, pair_name="tiny", settings=settings, timings=False)
        async with app.run_test(size=(80, 24)) as pilot:
            while app.pair is None:
                await pilot.pause(0.01)
            await pilot.press(*"hello", "enter")
            chat = app.get_screen("chat")
            while not (app.pair.paused.is_set() and chat.job and not chat.job.outbox._waiting):
                await pilot.pause(0.01)
            await pilot.pause()
            shown = [(v.role, v.text) for v in chat.views]
            with open(report + ".tmp", "w") as f:
                json.dump(shown, f)
            os.replace(report + ".tmp", report)
            await asyncio.sleep(600)  # killed long before this ends

    asyncio.run(main())
    """
)


def test_a_kill_mid_answer_keeps_what_was_shown(tiny, fresh_home, tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    report = tmp_path / "shown.json"
    tests_dir = Path(__file__).parent
    child = subprocess.Popen(
        [
            sys.executable,
            str(script),
            str(tiny.base),
            str(tiny.aligned),
            str(report),
            str(tests_dir),
        ],
        env=os.environ | {"BACO_HOME": str(fresh_home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(1200):  # wait for the child to show the tokens (bounded polling)
            if report.exists() or child.poll() is not None:
                break
            time.sleep(0.05)
        assert report.exists(), child.stderr.read().decode() if child.poll() is not None else ""
        shown = json.loads(report.read_text())
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL

    db = sqlite3.connect(fresh_home / "data" / "sessions.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT kind, title FROM sessions").fetchall() == [("chat", "hello")]
    rows = db.execute("SELECT role, content, complete FROM messages ORDER BY id").fetchall()
    assert [(role, content) for role, content, _ in rows] == [tuple(m) for m in shown]
    assert rows[1][1] and rows[1][2] == 0  # the answer so far, marked unfinished
    # and how it was being made: enough to replay it
    meta = json.loads(db.execute("SELECT meta FROM messages ORDER BY id").fetchall()[1][0])
    assert (meta["seed"], meta["router"], meta["pair"]) == (1, "p-punc", "tiny-base + tiny-aligned")
    db.close()


@pytest.mark.asyncio
async def test_an_unfinished_answer_reopens_marked_interrupted(tmp_path, fresh_home, tiny):
    # What a killed app left behind reads back as an interrupted answer.
    from test_tui_app import loaded, make_app

    from tui.store import SessionStore

    store = SessionStore()
    sid = store.create_session("chat", "hello", "tiny")
    store.add_message(sid, "user", "hello")
    store.add_message(
        sid, "assistant", "Half an", [("base", "Half"), ("aligned", " an")], complete=False
    )
    store.close()
    app = make_app(tiny)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await app.open_session(sid)
        chat = app.get_screen("chat")
        assert [v.text for v in chat.views] == ["hello", "Half an"]
        assert "interrupted" in chat.views[1].title
    app.close_pair()

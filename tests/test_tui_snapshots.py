"""Screenshots of the main screens at 80x24, compared with the accepted ones in
tests/__snapshots__ (update with `pytest --snapshot-update` after checking them by eye).

Deterministic by construction: the screens show stored sessions written here with fixed
text and fixed times (UTC), tokens/s are hidden, notifications are cleared, and no text
depends on llama.cpp's arithmetic (the tiny pair is loaded only for its label).
"""

from __future__ import annotations

import time

import pytest
from test_tui_app import loaded, make_app

from tui.store import SessionStore

SIZE = (80, 24)
MARKDOWN_ANSWER = [
    ("aligned", "Three "),
    ("base", "moons"),
    ("aligned", ":\n\n- "),
    ("base", "**Io**"),
    ("aligned", ", "),
    ("base", "volcanic"),
    ("aligned", "\n- "),
    ("base", "Europa"),
    ("aligned", ", under "),
    ("base", "ice"),
    ("aligned", "\n- Titan, with lakes of "),
    ("base", "methane"),
    ("aligned", "."),
]
META = {
    "router": "p-punc",
    "gamma": 0.5,
    "seed": 7,
    "finish_reason": "eog",
    "stats": {"base_fraction": 0.46},
}


class FixedClock:
    def __init__(self):
        self.now = 1_750_000_000.0  # 2025-06-15 15:06 UTC

    def __call__(self):
        self.now += 60.0
        return self.now


@pytest.fixture
def stored(tmp_path, monkeypatch):
    """A sessions file, at a relative path, with one session of each kind."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.chdir(tmp_path)
    store = SessionStore("sessions.sqlite3", clock=FixedClock())
    ids = {}
    ids["chat"] = store.create_session("chat", "Name three moons", "tiny-base + tiny-aligned")
    store.add_message(ids["chat"], "user", "Name three moons and one fact each.")
    text = "".join(t for _, t in MARKDOWN_ANSWER)
    store.add_message(ids["chat"], "assistant", text, MARKDOWN_ANSWER, META)
    ids["brainstorm"] = store.create_session("brainstorm", "A name for a cat", "tiny")
    store.add_message(ids["brainstorm"], "user", "A name for a cat")
    for seed, runs in (
        (7, [("base", "Pepper"), ("aligned", ", for a grey cat.")]),
        (8, [("aligned", "Captain "), ("base", "Whiskers"), ("aligned", ".")]),
        (9, [("base", "Miso"), ("aligned", ", small and warm.")]),
    ):
        card = store.add_message(
            ids["brainstorm"], "assistant", "".join(t for _, t in runs), runs, META | {"seed": seed}
        )
        if seed == 8:
            store.set_favourite(card, True)
    ids["compare"] = store.create_session("compare", "A haiku about rain", "tiny")
    for quality, originality in (("aligned", "collaboration"), ("collaboration", "tie")):
        store.add_vote(
            ids["compare"],
            "A haiku about rain",
            shown_first="aligned",
            quality=quality,
            originality=originality,
            router="p-punc",
            gamma=0.5,
            seed=1,
        )
    store.close()
    yield ids
    time.tzset()


def app_for(tiny):
    return make_app(tiny, store_path="sessions.sqlite3", clock=FixedClock())


def before(*keys, session=None):
    async def run(pilot):
        await loaded(pilot)
        if session is not None:
            await pilot.app.open_session(session)
        await pilot.press(*keys)
        await pilot.pause()
        pilot.app.clear_notifications()
        await pilot.pause()

    return run


def test_chat_with_sources(snap_compare, tiny, stored):
    assert snap_compare(
        app_for(tiny), terminal_size=SIZE, run_before=before(session=stored["chat"])
    )


def test_chat_as_markdown(snap_compare, tiny, stored):
    run = before("ctrl+o", session=stored["chat"])
    assert snap_compare(app_for(tiny), terminal_size=SIZE, run_before=run)


def test_brainstorm_cards(snap_compare, tiny, stored):
    run = before(session=stored["brainstorm"])
    assert snap_compare(app_for(tiny), terminal_size=SIZE, run_before=run)


def test_compare_summary(snap_compare, tiny, stored):
    assert snap_compare(app_for(tiny), terminal_size=SIZE, run_before=before("f4"))


def test_sessions_list(snap_compare, tiny, stored):
    assert snap_compare(app_for(tiny), terminal_size=SIZE, run_before=before("f5"))


def test_help(snap_compare, tiny, stored):
    assert snap_compare(app_for(tiny), terminal_size=SIZE, run_before=before("f1"))


def test_settings_panel(snap_compare, tiny, stored):
    assert snap_compare(app_for(tiny), terminal_size=SIZE, run_before=before("ctrl+s"))

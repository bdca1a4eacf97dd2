"""Brainstorm, compare, sessions, settings, help and models, driven with Pilot on the
tiny GGUF pair (helpers shared with test_tui_app)."""

from __future__ import annotations

import json

import pytest
from test_tui_app import (
    GatedPair,
    answered,
    loaded,
    make_app,
    send,
    shown_colours,
    tiny_loader,
    until,
)

from baco_local import GenerationSettings
from tui.widgets import MessageView

# --- brainstorm -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_brainstorm_draws_n_seeded_cards_and_keeps_favourites(tiny, fresh_home):
    app = make_app(tiny, settings=GenerationSettings(seed=7, max_tokens=16), brainstorm_n=3)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("f3")
        screen = app.get_screen("brainstorm")
        assert app.screen is screen
        await send(pilot, "Name a colour")
        await answered(pilot, screen)
        cards = screen.cards
        assert [c.seed for c in cards] == [7, 8, 9]
        assert all(c.text and c.complete for c in cards)
        meter = str(screen.query_one("#diversity").render())
        assert "distinct-2" in meter and "(3 answers)" in meter
        cards[1].focus()
        await pilot.press("f")
        assert cards[1].favourite
        session = app.store.sessions()[0]
        assert session.kind == "brainstorm"
        assert [m.favourite for m in app.store.messages(session.id)[1:]] == [False, True, False]
        gamma = app.settings.gamma
        await pilot.press("ctrl+g")  # more different: gamma towards the base, a new round
        assert app.settings.gamma == pytest.approx(gamma + 0.05)
        await answered(pilot, screen)
        assert [c.seed for c in screen.cards] == [8, 10, 11, 12]
        assert screen.cards[0] is cards[1] and screen.cards[0].favourite
        # numbered afresh, kept cards first, as the reopened session shows them
        assert [c.number for c in screen.cards] == [1, 2, 3, 4]
        assert "★ Answer 1 · seed 8" in screen.cards[0]._title_text()
        stored = app.store.messages(session.id)
        assert [m.meta.get("seed") for m in stored[1:]] == [8, 10, 11, 12]
    app.close_pair()


@pytest.mark.asyncio
async def test_brainstorm_cards_stopped_before_they_began_are_stored_as_stopped(
    long_tiny, fresh_home
):
    from baco_local import Pair

    base, aligned = long_tiny

    def load():  # one sequence: the second and third cards wait for the first
        return Pair.load(base=base, aligned=aligned, n_ctx=8192, n_threads=2, n_parallel=1)

    settings = GenerationSettings(seed=7, max_tokens=6000, lead=0)
    app = make_app(None, loader=load, settings=settings, brainstorm_n=3)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("f3")
        screen = app.get_screen("brainstorm")
        await send(pilot, "Tell me about the cat")
        # (more tries than usual: a busy machine reads the prompt and stops more slowly)
        await until(pilot, lambda: screen.round_cards and screen.round_cards[0].text, 5000)
        await pilot.press("escape")
        await until(pilot, lambda: screen.job is None, 5000)
        first, *waiting = screen.round_cards
        assert first.text and all(not card.text for card in waiting)
        stored = app.store.messages(app.store.sessions()[0].id)[1:]
        assert all(m.complete for m in stored)
        assert [m.meta["seed"] for m in stored[1:]] == [8, 9]
        assert all(m.meta["finish_reason"] == "cancelled" for m in stored)
        assert all("stopped" in card._title_text() for card in waiting)
    app.close_pair()


# --- compare ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_compare_vote_is_stored_and_labels_revealed(tiny, fresh_home):
    app = make_app(tiny, settings=GenerationSettings(seed=3, max_tokens=16))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("f4")
        screen = app.get_screen("compare")
        await send(pilot, "Write a line")
        await answered(pilot, screen)
        a, b = screen.round["views"]
        assert a.title == "Answer A" and b.title == "Answer B"  # no labels before the vote
        assert shown_colours(a) == set()  # no colours before the vote: they would tell
        # plain text, as after the vote: the reveal does not reflow what was read
        assert not a.query(".message-markdown") and a.query_one(".message-body").display
        arms = screen.round["arms"]
        assert sorted(arms) == ["aligned", "collaboration"]
        aligned_view = screen.round["views"][arms.index("aligned")]
        assert {s for s, _ in aligned_view.sourced.runs} == {"aligned"}
        await pilot.press("a", "t")  # quality: A; originality: tie
        (vote,) = app.store.votes()
        assert (vote.quality, vote.originality, vote.shown_first) == (arms[0], "tie", arms[0])
        assert (vote.router, vote.seed) == ("p-punc", 3)
        assert "collaboration" in a.title + b.title and "aligned alone" in a.title + b.title
        await pilot.pause()
        assert not a.query(".message-markdown") and shown_colours(a)  # coloured, same text
        summary = str(screen.query_one("#summary").render())
        assert "(of 1)" in summary
    app.close_pair()


@pytest.mark.asyncio
async def test_compare_stopped_before_its_second_answer_began_leaves_no_card_stopping(
    tiny, fresh_home
):
    gate = {}

    def load():
        gate["pair"] = GatedPair(tiny_loader(tiny)(), after=3)
        return gate["pair"]

    app = make_app(tiny, loader=load, settings=GenerationSettings(seed=3, max_tokens=16))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("f4")
        screen = app.get_screen("compare")
        await send(pilot, "Write a line")
        await until(pilot, gate["pair"].paused.is_set)  # the first answer, midway
        await pilot.press("escape")
        await until(pilot, lambda: screen.job is None)
        first, second = screen.round["views"]
        assert first.complete and "stopping" not in first.title
        assert second.complete and second.title == "Answer B · stopped"
        stored = app.store.messages(app.store.sessions()[0].id)[1:]
        assert all(m.complete for m in stored)
        assert stored[1].meta["finish_reason"] == "cancelled"
    app.close_pair()


# --- sessions ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_session_is_deleted_on_a_second_d_and_the_chat_showing_it_starts_afresh(
    tiny, fresh_home
):
    app = make_app(tiny)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        chat = app.get_screen("chat")
        for text in ("Keep me", "Forget me"):
            await chat.action_new_chat()
            await send(pilot, text)
            await answered(pilot, chat)
        assert [s.title for s in app.store.sessions()] == ["Forget me", "Keep me"]
        await pilot.press("f5")
        table = app.get_screen("sessions").query_one("DataTable")
        await pilot.press("d")  # the newest, selected: asks first
        assert len(app.store.sessions()) == 2
        await pilot.press("d")
        await pilot.pause()
        assert [s.title for s in app.store.sessions()] == ["Keep me"]
        assert table.row_count == 1
        assert chat.session_id is None and not chat.views  # it showed the deleted one
        await pilot.press("d")  # the next one: asked again, not deleted at once
        assert len(app.store.sessions()) == 1
    app.close_pair()


@pytest.mark.asyncio
async def test_a_saved_chat_reopens_after_a_restart_and_exports(tiny, fresh_home):
    first = make_app(tiny)
    async with first.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        chat = first.get_screen("chat")
        await send(pilot, "Remember me")
        await answered(pilot, chat)
        shown = [(v.role, v.text) for v in chat.views]
    first.close_pair()

    second = make_app(tiny)
    async with second.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("f5")
        table = second.get_screen("sessions").query_one("DataTable")
        assert table.row_count == 1
        await pilot.press("m", "j")
        exports = sorted((fresh_home / "data" / "exports").iterdir())
        assert [p.suffix for p in exports] == [".json", ".md"]
        assert "Remember me" in exports[1].read_text()
        assert json.loads(exports[0].read_text())["messages"][0]["content"] == "Remember me"
        await pilot.press("enter")
        await pilot.pause()
        chat = second.get_screen("chat")
        assert second.screen is chat
        assert [(v.role, v.text) for v in chat.views] == shown
        await send(pilot, "Still there?")  # the reopened chat goes on
        await answered(pilot, chat)
        assert len(second.store.messages(chat.session_id)) == 4
    second.close_pair()


# --- settings, help, models ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_settings_panel_validates_and_applies(tiny, fresh_home):
    app = make_app(tiny)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("ctrl+s")
        panel = app.screen
        temperature = panel.query_one("#field-temperature")
        temperature.value = "9"
        await pilot.press("ctrl+s")
        assert app.screen is panel  # refused, with the reason
        assert "temperature 9.0 is out of range" in str(panel.query_one("#settings-error").render())
        temperature.value = "0.3"
        panel.query_one("#field-system").value = "Answer in French."
        panel.query_one("#field-n").value = "3"
        await pilot.press("ctrl+s")
        assert app.screen is app.get_screen("chat")
        assert app.settings.temperature == 0.3
        assert (app.system, app.brainstorm_n) == ("Answer in French.", 3)
    app.close_pair()


@pytest.mark.asyncio
async def test_help_opens_and_closes_and_q_quits(tiny, fresh_home):
    app = make_app(tiny)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("f1")
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        assert app.screen is app.get_screen("chat")
        app.screen.set_focus(None)
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running
    app.close_pair()


@pytest.mark.asyncio
async def test_models_screen_lists_the_catalog(tiny, fresh_home):
    catalog = pytest.importorskip("baco_local.models.catalog")
    if not hasattr(catalog, "load_catalog"):
        pytest.skip("the catalog is not in this version")
    app = make_app(tiny)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot)
        await pilot.press("f6")
        table = app.get_screen("models").query_one("DataTable")
        assert table.row_count == len(catalog.load_catalog())
        assert catalog.default_pair_name() in [row.value for row in table.rows]
    app.close_pair()


@pytest.mark.asyncio
async def test_models_screen_switches_the_pair_with_its_router(tiny, fresh_home):
    from baco_local.core.settings import LoadSettings
    from baco_local.models.catalog import add_user_pair

    add_user_pair(
        "tiny-pair", str(tiny.base), str(tiny.aligned), router="p", gamma=0.3, check=False
    )
    app = make_app(tiny, load_settings=LoadSettings(n_ctx=512, n_threads=2))
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot)
        assert app.settings.router == "p-punc"
        await pilot.press("f6")
        screen = app.get_screen("models")
        table = screen.query_one("DataTable")
        names = [row.value for row in table.rows]
        table.move_cursor(row=names.index("tiny-pair"))
        await pilot.pause()
        assert "tiny-pair" in str(screen.query_one("#models-note").render())
        await pilot.press("u")
        await loaded(pilot)
        assert (app.pair_name, app.pair_label) == ("tiny-pair", "tiny-pair")
        assert (app.settings.router, app.settings.gamma) == ("p", 0.3)  # the pair's choice
        await pilot.press("f2", *"hi", "enter")
        chat = app.get_screen("chat")
        await answered(pilot, chat)
        assert chat.views[-1].text
    app.close_pair()


class _PausingAnswers:
    """stream_answers of the real tiny pair, pausing after `after` events until released:
    lets a test look at the cards in the middle of a round."""

    def __init__(self, answers, after: int):
        import threading

        self.answers, self.after = answers, after
        self.paused, self.release = threading.Event(), threading.Event()

    def __iter__(self):
        for count, event in enumerate(self.answers, start=1):
            yield event
            if count == self.after:
                self.paused.set()
                self.release.wait(timeout=60)

    def __getattr__(self, name):
        return getattr(self.answers, name)


@pytest.mark.asyncio
async def test_brainstorm_cards_fill_in_side_by_side(tiny, fresh_home):
    app = make_app(tiny, settings=GenerationSettings(seed=7, max_tokens=24), brainstorm_n=3)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        pair = app.pair
        gates = []

        def pausing(*args, **kwargs):
            gates.append(_PausingAnswers(pair.stream_answers(*args, **kwargs), after=9))
            return gates[-1]

        app.pair = type("P", (), {"stream_answers": staticmethod(pausing)})()
        await pilot.press("f3")
        screen = app.get_screen("brainstorm")
        await send(pilot, "Name a colour")
        await until(pilot, lambda: gates and gates[0].paused.is_set())
        await pilot.pause(0.05)
        screen.drain()
        cards = screen.cards
        assert sum(bool(card.text) for card in cards) >= 2  # several grow at once
        assert not any(card.complete for card in cards)
        meter = str(screen.query_one("#diversity").render())
        assert "distinct-2" in meter  # measured while the answers grow
        gates[0].release.set()
        await answered(pilot, screen)
        assert all(card.complete and card.text for card in screen.cards)
        app.pair = pair
    app.close_pair()


# --- answers of two screens at once ------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(("key", "mode"), [("f3", "brainstorm"), ("f4", "compare")])
async def test_answers_started_while_a_chat_answer_runs_join_it(tiny, fresh_home, key, mode):
    """Answers of every screen decode together in the pair's batch: answers started while
    the chat answer is mid-way are written at once, nothing says they wait, and the chat
    answer goes on afterwards."""

    gate = {}

    def load():
        gate["pair"] = GatedPair(tiny_loader(tiny)(), after=3)
        return gate["pair"]

    app = make_app(
        tiny, loader=load, settings=GenerationSettings(seed=7, max_tokens=8), brainstorm_n=2
    )
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot)
        chat = app.get_screen("chat")
        await send(pilot, "Go on")
        await until(pilot, gate["pair"].paused.is_set)  # the chat answer is mid-way
        gate["pair"].after = 10**9  # answers after this one run through
        await pilot.press(key)
        screen = app.get_screen(mode)
        await send(pilot, "Name a colour")
        await until(pilot, lambda: screen.job is None, tries=3000)
        await pilot.pause()
        views = [v for v in screen.query(MessageView) if v.role == "assistant"]
        assert len(views) == 2
        for view in views:
            assert view.complete and view.text
            assert "waiting" not in view._title_text()
        assert chat.job is not None  # still mid-way: it did not have to end first
        assert not any("waiting" in n.message for n in app._notifications)
        await pilot.press("f2")
        await pilot.press("escape")  # stop the chat answer
        await until(pilot, lambda: chat.job is None, tries=3000)
    app.close_pair()


@pytest.mark.asyncio
async def test_a_sessions_file_that_cannot_open_is_said_where_sessions_are_listed(
    tiny, fresh_home, tmp_path
):
    broken = tmp_path / "sessions.sqlite3"
    broken.write_bytes(b"not a database, " * 64)
    app = make_app(tiny, store_path=str(broken))
    async with app.run_test(size=(100, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("f5")
        note = str(app.get_screen("sessions").query_one("#sessions-note").render())
        assert "in memory only: they are lost when you quit" in note
        assert "file is not a database" in note  # and why
    assert broken.read_bytes() == b"not a database, " * 64  # left as it was
    app.close_pair()

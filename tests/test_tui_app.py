"""The terminal app driven with Pilot on the tiny GGUF pair, through the real llama.cpp."""

from __future__ import annotations

import threading

import pytest
from textual.color import Color

from baco_local import GenerationSettings, Pair
from baco_local.core.routers import ROUTERS, get_router
from tui import preferences
from tui.app import BacoApp
from tui.preferences import Remembered
from tui.store import SessionStore
from tui.widgets import SOURCE_STYLES, AnswerCard, MessageView, PromptInput


def tiny_loader(tiny, n_ctx=512):
    return lambda: Pair.load(base=tiny.base, aligned=tiny.aligned, n_ctx=n_ctx, n_threads=2)


def make_app(tiny, loader=None, **options) -> BacoApp:
    settings = options.pop("settings", GenerationSettings(seed=1, max_tokens=40))
    return BacoApp(
        loader or tiny_loader(tiny),
        pair_name="tiny",
        settings=settings,
        timings=False,
        seed=0,
        **options,
    )


class GatedPair:
    """The real tiny pair, except that each answer pauses after `after` tokens until it
    is stopped: a slow model on demand, so a test can act in the middle of an answer."""

    def __init__(self, pair, after: int = 3):
        self._pair, self.after = pair, after
        self.paused = threading.Event()

    def __getattr__(self, name):
        return getattr(self._pair, name)

    def stream(self, *args, **kwargs):
        return _GatedGeneration(self._pair.stream(*args, **kwargs), self)


class _GatedGeneration:
    def __init__(self, generation, gate: GatedPair):
        self.generation, self.gate = generation, gate
        self._stopped = threading.Event()

    def __iter__(self):
        for count, event in enumerate(self.generation, start=1):
            yield event
            if count == self.gate.after:
                self.gate.paused.set()
                self._stopped.wait(timeout=60)

    def cancel(self):
        self._stopped.set()
        self.generation.cancel()

    @property
    def result(self):
        return self.generation.result


def source_colour(source: str) -> Color:
    return Color.parse(SOURCE_STYLES[source].split()[-1])


def shown_colours(view: MessageView) -> set[Color]:
    """The text colours in a message's rendered body."""
    body = view.query_one(".message-body").render()
    return {span.style.foreground for span in body.spans if span.style.foreground}


async def until(pilot, condition, tries: int = 500):
    """Let the app run until condition() holds (a bound on tries, never on time)."""
    for _ in range(tries):
        if condition():
            return
        await pilot.pause(0.01)
    raise AssertionError("the app never reached the expected state")


async def loaded(pilot):
    await until(pilot, lambda: pilot.app.pair is not None and not pilot.app.pair_loading)


async def answered(pilot, screen):
    await until(pilot, lambda: screen.job is None)
    await pilot.pause()


async def send(pilot, text: str):
    await pilot.press(*text)
    await pilot.press("enter")


# --- starting ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_app_appears_before_the_pair_loads(tiny, fresh_home):
    release = threading.Event()

    def slow_load():
        release.wait(timeout=60)
        return tiny_loader(tiny)()

    app = make_app(tiny, loader=slow_load)
    async with app.run_test(size=(80, 24)) as pilot:
        chat = app.get_screen("chat")
        status = str(chat.query_one("#status").render())
        assert "loading tiny…" in status
        await send(pilot, "hi")  # typing works while loading; sending says why it waits
        assert not chat.views
        assert chat.query_one(PromptInput).text == "hi"
        release.set()
        await loaded(pilot)
        assert "tiny-base + tiny-aligned" in str(chat.query_one("#status").render())
    app.close_pair()


@pytest.mark.asyncio
async def test_a_bad_model_file_is_a_notification_not_a_crash(tiny, tmp_path, fresh_home):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF but not really")
    app = make_app(tiny, loader=lambda: Pair.load(base=bad, aligned=tiny.aligned))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: not app.pair_loading)
        assert app.pair is None
        errors = [n for n in app._notifications if n.severity == "error"]
        assert errors and "broken.gguf" in errors[0].message
        await send(pilot, "hello")
        assert not app.get_screen("chat").views  # nothing sent, the app is still up
        assert app.is_running


# --- chat -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_chat_streams_an_answer_coloured_by_source_and_stores_it(tiny, fresh_home):
    app = make_app(tiny)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        chat = app.get_screen("chat")
        await send(pilot, "Tell me a story")
        await answered(pilot, chat)
        user, answer = chat.views
        assert (user.role, user.text) == ("user", "Tell me a story")
        assert answer.text and answer.complete
        assert {source for source, _ in answer.sourced.runs} == {"base", "aligned"}
        assert shown_colours(answer) == {source_colour("base"), source_colour("aligned")}
        assert "p-punc γ0.50" in answer.title and "seed 1" in answer.title
        assert "% base" in str(chat.query_one("#status").render())
        # the store holds exactly what was shown
        store = app.store
        (session,) = store.sessions()
        stored = store.messages(session.id)
        assert [m.role for m in stored] == ["user", "assistant"]
        assert stored[1].content == answer.text
        assert stored[1].segments == answer.sourced.runs
        assert stored[1].complete and stored[1].meta["seed"] == 1
        # a second turn sends the whole conversation
        await send(pilot, "And then?")
        await answered(pilot, chat)
        assert [v.role for v in chat.views] == ["user", "assistant", "user", "assistant"]
        assert len(store.messages(session.id)) == 4
    app.close_pair()


@pytest.mark.asyncio
async def test_escape_stops_an_answer_midway_and_keeps_it(tiny, fresh_home):
    gate = {}

    def load():
        gate["pair"] = GatedPair(tiny_loader(tiny)(), after=3)
        return gate["pair"]

    app = make_app(tiny, loader=load)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        chat = app.get_screen("chat")
        await send(pilot, "Go on")
        await until(pilot, gate["pair"].paused.is_set)
        await until(pilot, lambda: chat.answer_view is not None and chat.answer_view.text)
        shown = chat.answer_view.text
        (session,) = app.store.sessions()
        partial = app.store.messages(session.id)[1]
        assert (partial.content, partial.complete) == (shown, False)  # stored while streaming
        await pilot.press("escape")
        await answered(pilot, chat)
        answer = chat.views[-1]
        # It keeps what it wrote: what was shown, and what the step under way had
        # written already (a drafted run may accept several tokens in one step).
        assert answer.text.startswith(shown) and "cancelled" in answer.title
        stored = app.store.messages(session.id)[1]
        assert stored.complete and stored.meta["finish_reason"] == "cancelled"
        assert stored.content == answer.text
        assert 3 <= stored.meta["stats"]["tokens"] < 20
    app.close_pair()


@pytest.mark.asyncio
async def test_router_and_gamma_keys_change_the_next_answer(tiny, fresh_home):
    app = make_app(tiny)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        chat = app.get_screen("chat")
        names = list(ROUTERS)
        await pilot.press("ctrl+t")
        expected = names[(names.index("p-punc") + 1) % len(names)]
        assert app.settings.router == expected
        while app.settings.router != "p":
            await pilot.press("ctrl+t")
        assert app.settings.gamma == 0.5
        await pilot.press("f8", "f8", "f7", "f8")
        assert app.settings.gamma == pytest.approx(0.6)
        assert "p γ0.60" in str(chat.query_one("#status").render())
        # typed in the prompt box, - is text; outside it, - turns the dial
        await pilot.press("minus")
        assert chat.query_one(PromptInput).text == "-"
        chat.query_one(PromptInput).clear()
        chat.set_focus(None)
        await pilot.press("minus")
        assert app.settings.gamma == pytest.approx(0.55)
        chat.query_one(PromptInput).focus()
        await send(pilot, "Hello")
        await answered(pilot, chat)
        meta = app.store.messages(app.store.sessions()[0].id)[1].meta
        assert (meta["router"], meta["gamma"]) == ("p", pytest.approx(0.55))
    app.close_pair()


@pytest.mark.asyncio
async def test_regenerate_edit_and_copy(tiny, fresh_home):
    app = make_app(tiny, settings=GenerationSettings(seed=4, max_tokens=12))
    copied = []
    app.copy_to_clipboard = copied.append
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        chat = app.get_screen("chat")
        await send(pilot, "First")
        await answered(pilot, chat)
        first_answer = chat.views[-1]
        await pilot.press("ctrl+r")
        await answered(pilot, chat)
        assert [v.role for v in chat.views] == ["user", "assistant"]
        assert chat.views[-1] is not first_answer
        session = app.store.sessions()[0].id
        stored = app.store.messages(session)
        assert len(stored) == 2  # the replaced answer is gone
        assert stored[1].meta["seed"] == 5  # seed 4 again would give the same answer
        await pilot.press("ctrl+y")
        assert copied == [chat.views[-1].text]
        await pilot.press("ctrl+e")
        assert chat.views == [] and chat.query_one(PromptInput).text == "First"
        assert app.store.messages(session) == []
        await pilot.press("end", *" again", "enter")
        await answered(pilot, chat)
        assert chat.views[0].text == "First again"
    app.close_pair()


@pytest.mark.asyncio
async def test_a_full_context_is_a_notification_not_a_crash(tiny, fresh_home):
    # llama.cpp gives the tiny models a 256-token context at least
    settings = GenerationSettings(seed=1, max_tokens=200)
    app = make_app(tiny, loader=tiny_loader(tiny, n_ctx=256), settings=settings)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        chat = app.get_screen("chat")
        prompt = chat.query_one(PromptInput)
        prompt.text = "many words " * 150  # the prompt alone does not fit
        await pilot.press("enter")
        await answered(pilot, chat)
        errors = [n for n in app._notifications if n.severity == "error"]
        assert errors and "context holds 256" in errors[-1].message
        assert "back in the box" in errors[-1].message
        # The message left the conversation (each later prompt would carry it and fail
        # the same way) and is back in the box, with no empty answer left behind.
        await until(pilot, lambda: chat.views == [])
        assert prompt.text == ("many words " * 150).strip()
        assert app.store.messages(app.store.sessions()[0].id) == []
        prompt.text = "many words " * 20  # a shorter one, which fills the context up
        await pilot.press("enter")
        await answered(pilot, chat)
        warnings = [n for n in app._notifications if n.severity == "warning"]
        assert warnings and "context window is full" in warnings[-1].message
        assert chat.views[-1].text and "context" in chat.views[-1].title
        assert app.is_running
    app.close_pair()


@pytest.mark.asyncio
async def test_the_router_key_skips_a_router_the_pair_cannot_run(tiny, fresh_home):
    def loader():
        return Pair.load(base=tiny.base, aligned=tiny.other_vocab, n_ctx=512, n_threads=2)

    app = make_app(tiny, loader=loader)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        seen = []
        for _ in ROUTERS:
            await pilot.press("ctrl+t")
            seen.append(app.settings.router)
        assert "ensemble" not in seen  # it needs one vocabulary; this pair has two
        assert set(seen) == set(ROUTERS) - {"ensemble"}
        recommended = app.pair.default_settings
        while app.settings.router != recommended.router:
            await pilot.press("ctrl+t")
        assert app.settings.gamma == recommended.gamma  # the pair's own, not the router's
        # a gamma set on a router is there again when ctrl+t comes back round to it
        while app.settings.router != "h-punc":
            await pilot.press("ctrl+t")
        await pilot.press("f7", "f7")
        turned = app.settings.gamma
        assert turned != get_router("h-punc").gamma_default
        for _ in range(len(ROUTERS) - 1):
            await pilot.press("ctrl+t")
        assert (app.settings.router, app.settings.gamma) == ("h-punc", turned)
    app.close_pair()


@pytest.mark.asyncio
async def test_choices_made_in_the_app_are_there_at_the_next_start(tiny, fresh_home, tmp_path):
    path = tmp_path / "config" / "chat.json"
    app = make_app(tiny, follow_pair=True, chosen={"temperature": 0.5}, remember=path)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        assert app.settings.temperature == 0.5
        while app.settings.router != "p":
            await pilot.press("ctrl+t")
        await pilot.press("f8", "f8")
        turned = app.settings.gamma
        assert turned == pytest.approx(get_router("p").gamma_default + 0.1)
    app.close_pair()
    remembered, warning = preferences.load(path)
    assert warning is None
    # the app's own choices, not the command line's temperature (it held for that run)
    assert remembered.settings == {"router": "p", "gamma": turned}
    again = make_app(
        tiny, follow_pair=True, chosen=remembered.settings, remember=path, remembered=remembered
    )
    async with again.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        assert (again.settings.router, again.settings.gamma) == ("p", turned)
        assert again.settings.temperature == again.pair.default_settings.temperature
    again.close_pair()


@pytest.mark.asyncio
async def test_a_remembered_router_this_pair_cannot_run_gives_way_to_its_own(tiny, fresh_home):
    def loader():
        return Pair.load(base=tiny.base, aligned=tiny.other_vocab, n_ctx=512, n_threads=2)

    chosen = {"router": "ensemble", "temperature": 0.5}
    kept = Remembered(chosen)
    app = make_app(tiny, loader=loader, follow_pair=True, chosen=chosen, remembered=kept)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        # the pair's router and gamma; the other choices hold
        assert app.settings == app.pair.default_settings.with_changes(temperature=0.5)
        warnings = [n.message for n in app._notifications if n.severity == "warning"]
        assert any("ensemble" in m and "an earlier run" in m for m in warnings), warnings
    app.close_pair()


@pytest.mark.asyncio
async def test_a_seed_is_not_kept_and_a_file_that_cannot_be_written_is_said_once(
    tiny, fresh_home, tmp_path
):
    path = tmp_path / "chat.json"
    app = make_app(tiny, follow_pair=True, remember=path)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        app.set_settings(app.settings.with_changes(seed=9, top_k=7))
        assert preferences.load(path) == (Remembered({"top_k": 7}), None)
        (tmp_path / "blocked").write_text("a file where a folder should be")
        app._remember_path = tmp_path / "blocked" / "chat.json"
        app.set_settings(app.settings.with_changes(top_k=8))
        app.set_settings(app.settings.with_changes(top_k=9))
        await pilot.pause()
        warnings = [n.message for n in app._notifications if n.severity == "warning"]
        assert len([m for m in warnings if "Could not save" in m and "writable" in m]) == 1
        assert app.settings.top_k == 9  # the choice holds for this run
    app.close_pair()


def test_messageview_and_store_agree_on_runs(tmp_path):
    # The runs a view shows are the runs a reopened session gets back.
    view = MessageView("assistant", [("base", "Once"), ("base", " upon"), ("aligned", ".")])
    store = SessionStore(tmp_path / "s.sqlite3")
    sid = store.create_session("chat", "x", "tiny")
    mid = store.add_message(sid, "assistant", view.text, view.sourced.runs)
    assert (
        store.messages(sid)[0].segments
        == view.sourced.runs
        == (
            ("base", "Once upon"),
            ("aligned", "."),
        )
    )
    assert store.messages(sid)[0].id == mid
    card = AnswerCard(1, 7, view.sourced.runs, favourite=True)
    assert card.favourite and card.text == "Once upon."


@pytest.mark.asyncio
async def test_a_long_chat_goes_on_past_the_context_and_keeps_every_message(tiny, fresh_home):
    settings = GenerationSettings(seed=1, max_tokens=12)
    app = make_app(tiny, loader=tiny_loader(tiny, n_ctx=256), settings=settings)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        chat = app.get_screen("chat")
        said = []
        notify = chat.notify
        chat.notify = lambda message, **kw: (said.append(message), notify(message, **kw))
        for turn in range(40):
            chat.query_one(PromptInput).text = f"Tell me more about the sea, part {turn}."
            await pilot.press("enter")
            await answered(pilot, chat)
        assert len([m for m in said if "no longer fits" in m]) == 1  # once, not every turn
        assert said and all("no longer fits" in m for m in said)  # nothing went wrong
        stored = app.store.messages(chat.session_id)
        assert [m.role for m in stored] == ["user", "assistant"] * 40  # nothing deleted
        assert all(m.complete for m in stored)
    app.close_pair()

"""Unit tests of the terminal app's pure parts: diversity, the dial, vote tallies, sourced
text, the session store, exports and the settings panel's parsing. Expected values are
worked out by hand in the comments."""

from __future__ import annotations

import dataclasses
import json
import sqlite3

import pytest

from baco_local.core.routers import ROUTERS
from baco_local.core.settings import GenerationSettings
from baco_local.errors import BacoError, SettingsError
from tui.dial import describe_dial, next_router, nudge_diversity, nudge_gamma, towards_base
from tui.diversity import (
    distinct_n,
    jaccard,
    mean_pairwise_similarity,
    measure_diversity,
    ngrams,
    words,
)
from tui.export import describe_answer, export_session, session_json, session_markdown
from tui.provenance import SourcedText
from tui.screens.settings import parse_fields
from tui.store import SessionStore
from tui.tally import tally

# --- diversity ---------------------------------------------------------------------------


def test_words_lowercase_and_drop_punctuation():
    assert words("Hello, world! It's  FINE.") == ["hello", "world", "it's", "fine"]


def test_ngrams():
    assert ngrams(["a", "b", "c"], 2) == [("a", "b"), ("b", "c")]
    assert ngrams(["a"], 2) == []
    with pytest.raises(ValueError):
        ngrams(["a"], 0)


def test_distinct_n_by_hand():
    texts = ["the cat sat", "the cat ran"]
    # unigrams: the cat sat the cat ran -> 6 in all, 4 unique {the, cat, sat, ran}
    assert distinct_n(texts, 1) == pytest.approx(4 / 6)
    # bigrams: (the cat) (cat sat) (the cat) (cat ran) -> 4 in all, 3 unique
    assert distinct_n(texts, 2) == pytest.approx(3 / 4)
    assert distinct_n(["", "!"], 1) == 0.0


def test_mean_pairwise_similarity_by_hand():
    # {the, cat, sat} vs {the, cat, ran}: 2 shared of 4 -> 0.5
    assert mean_pairwise_similarity(["the cat sat", "The cat ran."]) == pytest.approx(0.5)
    # {a,b}~{a,c} = 1/3, {a,b}~{d} = 0, {a,c}~{d} = 0 -> mean 1/9
    assert mean_pairwise_similarity(["a b", "a c", "d"]) == pytest.approx(1 / 9)
    assert mean_pairwise_similarity(["only one"]) is None
    assert jaccard(set(), set()) == 1.0


def test_measure_diversity_summary():
    diversity = measure_diversity(["the cat sat", "the cat ran"])
    assert (diversity.answers, diversity.similarity) == (2, pytest.approx(0.5))
    assert diversity.summary() == (
        "2 answers · distinct-1 0.67 · distinct-2 0.75 · similarity 0.50"
    )
    assert "similarity -" in measure_diversity(["one"]).summary()


# --- the dial ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("router", "direction"),
    [("p", 1), ("p-punc", 1), ("h", -1), ("h-punc", -1), ("nudging", -1), ("random", 1)],
)
def test_towards_base_asks_the_router(router, direction):
    # p: base when top-1 < gamma, so raising gamma sends more words to base (+1);
    # h: base when entropy > gamma, so lowering gamma does (-1); nudging is the reverse of p.
    assert towards_base(ROUTERS[router]) == direction


def test_towards_base_is_zero_without_a_dial():
    assert towards_base(ROUTERS["aligned"]) == 0
    assert towards_base(ROUTERS["punc"]) == 0


def test_nudge_gamma_steps_and_clamps():
    p = GenerationSettings(router="p-punc", gamma=0.5)
    assert nudge_gamma(p, 1).gamma == pytest.approx(0.55)
    assert nudge_gamma(p, -2).gamma == pytest.approx(0.4)
    assert nudge_gamma(GenerationSettings(router="p", gamma=0.98), 1).gamma == 1.0
    assert nudge_gamma(GenerationSettings(router="p", gamma=0.02), -1).gamma == 0.0
    # entropy dials move by a quarter nat
    assert nudge_gamma(GenerationSettings(router="h", gamma=1.5), 1).gamma == 1.75
    punc = GenerationSettings(router="punc")
    assert nudge_gamma(punc, 1) == punc


def test_nudge_diversity_follows_the_router():
    # more different = towards base: up for p, down for h
    assert nudge_diversity(GenerationSettings(router="p", gamma=0.5), 1).gamma == 0.55
    assert nudge_diversity(GenerationSettings(router="h", gamma=1.5), 1).gamma == 1.25
    assert nudge_diversity(GenerationSettings(router="h", gamma=1.5), -1).gamma == 1.75


def test_next_router_cycles_in_listed_order():
    names = list(ROUTERS)
    assert next_router(names[0]) == names[1]
    assert next_router(names[-1]) == names[0]
    assert next_router(names[0], -1) == names[-1]


def test_describe_dial():
    assert describe_dial(GenerationSettings(router="p-punc", gamma=0.5)) == "p-punc γ0.50"
    assert describe_dial(GenerationSettings(router="aligned")) == "aligned"


# --- votes -------------------------------------------------------------------------------


def test_tally_by_hand():
    counted = tally(["collaboration", "aligned", "tie", "collaboration"])
    assert (counted.votes, counted.collaboration, counted.aligned, counted.ties) == (4, 2, 1, 1)
    assert counted.collaboration_rate == 0.5
    assert counted.aligned_rate == 0.25
    assert counted.summary() == "collaboration 50% · aligned 25% · ties 1 (of 4)"


def test_tally_empty_and_bad():
    assert tally([]).collaboration_rate is None
    assert tally([]).summary() == "no votes yet"
    with pytest.raises(ValueError, match="unknown vote"):
        tally(["base"])


# --- sourced text ------------------------------------------------------------------------


def test_sourced_text_merges_runs():
    text = SourcedText()
    text.append("base", "Once")
    text.append("base", " upon")
    text.append("aligned", ".")
    text.append("aligned", "")
    assert text.runs == (("base", "Once upon"), ("aligned", "."))
    assert text.text == "Once upon."
    assert text.share("base") == pytest.approx(9 / 10)
    assert SourcedText().share("base") == 0.0
    assert not SourcedText()


# --- the session store -------------------------------------------------------------------


class Clock:
    def __init__(self, start=1_700_000_000.0):
        self.now = start

    def __call__(self):
        self.now += 1.0
        return self.now


def test_store_is_wal_and_round_trips(tmp_path):
    store = SessionStore(tmp_path / "s.sqlite3", clock=Clock())
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    sid = store.create_session("chat", "  A   question\nwith lines ", "tiny", system="be brief")
    user = store.add_message(sid, "user", "Hello")
    answer = store.add_message(sid, "assistant", "", complete=False)
    store.update_message(answer, "Hi there", [("aligned", "Hi"), ("base", " there")])
    messages = store.messages(sid)
    assert [m.id for m in messages] == [user, answer]
    assert messages[1].segments == (("aligned", "Hi"), ("base", " there"))
    assert not messages[1].complete
    store.update_message(
        answer, "Hi there!", [("aligned", "Hi there!")], meta={"seed": 3}, complete=True
    )
    final = store.messages(sid)[1]
    assert (final.content, final.complete, final.meta) == ("Hi there!", True, {"seed": 3})
    session = store.session(sid)
    assert (session.title, session.system, session.messages) == (
        "A question with lines",
        "be brief",
        2,
    )
    assert store.integrity() == "ok"


def test_store_writes_are_committed_at_once(tmp_path):
    # A second connection sees every write before the first one closes: nothing waits
    # in an open transaction, so a killed app loses nothing it wrote.
    path = tmp_path / "s.sqlite3"
    store = SessionStore(path)
    sid = store.create_session("brainstorm", "ideas", "tiny")
    card = store.add_message(sid, "assistant", "draft", complete=False)
    store.set_favourite(card, True)
    other = sqlite3.connect(path)
    assert other.execute("SELECT content, favourite FROM messages").fetchall() == [("draft", 1)]
    other.close()


def test_store_lists_newest_first_and_deletes(tmp_path):
    store = SessionStore(tmp_path / "s.sqlite3", clock=Clock())
    first = store.create_session("chat", "first", "tiny")
    second = store.create_session("compare", "second", "tiny")
    store.add_message(first, "user", "touches first")  # now the newest
    assert [s.id for s in store.sessions()] == [first, second]
    assert [s.id for s in store.sessions("compare")] == [second]
    vote = store.add_vote(
        second,
        "p",
        shown_first="aligned",
        quality="aligned",
        originality="collaboration",
        router="p-punc",
        gamma=0.5,
        seed=1,
    )
    assert store.votes(second)[0].id == vote
    assert store.votes()[0].originality == "collaboration"
    message = store.messages(first)[0].id
    store.delete_messages([message])
    assert store.messages(first) == []
    store.delete_session(second)
    assert store.votes() == []
    with pytest.raises(BacoError, match="no session"):
        store.session(second)
    with pytest.raises(ValueError):
        store.create_session("poem", "x", "tiny")


def test_store_unwritable_place_is_a_readable_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(BacoError) as caught:
        SessionStore(blocker / "sessions.sqlite3")
    assert "Cannot open the sessions file" in caught.value.message
    assert caught.value.hint


# --- exports -----------------------------------------------------------------------------


def _chat_session(store):
    sid = store.create_session("chat", "Moons", "tiny-pair", system="Be brief.")
    store.add_message(sid, "user", "Name a moon.")
    meta = {
        "router": "p-punc",
        "gamma": 0.5,
        "seed": 7,
        "finish_reason": "eog",
        "stats": {"base_fraction": 0.625},
    }
    store.add_message(sid, "assistant", "Io.", [("base", "Io"), ("aligned", ".")], meta)
    return sid


def test_describe_answer_by_hand():
    meta = {
        "router": "p-punc",
        "gamma": 0.5,
        "seed": 7,
        "finish_reason": "length",
        "stats": {"base_fraction": 0.625},
    }
    assert describe_answer(meta) == "p-punc γ0.50 · 62% base · seed 7 · length"
    assert describe_answer({"router": "aligned", "gamma": None}) == "aligned"
    assert describe_answer({}) == ""
    stopped = {"router": "p", "gamma": 0.5, "finish_reason": "stop"}
    assert describe_answer(stopped) == "p γ0.50 · stop string"  # not mistaken for eog
    assert describe_answer({"router": "p", "gamma": 0.5, "finish_reason": "eog"}) == "p γ0.50"


def test_session_markdown_and_json(tmp_path):
    store = SessionStore(tmp_path / "s.sqlite3")
    sid = _chat_session(store)
    args = (store.session(sid), store.messages(sid), store.votes(sid))
    markdown = session_markdown(*args)
    assert markdown.startswith("# Moons\n")
    assert "> System: Be brief." in markdown
    assert "## You\n\nName a moon." in markdown
    assert "## BACo — p-punc γ0.50 · 62% base · seed 7\n\nIo." in markdown
    data = session_json(*args)
    assert data["messages"][1]["segments"] == [["base", "Io"], ["aligned", "."]]
    assert data["session"]["title"] == "Moons"
    json.dumps(data)  # serialisable as it is


def test_compare_markdown_has_votes_and_win_rates(tmp_path):
    store = SessionStore(tmp_path / "s.sqlite3")
    sid = store.create_session("compare", "A | B", "tiny")
    for quality in ("collaboration", "aligned"):
        store.add_vote(
            sid,
            "A | B",
            shown_first="aligned",
            quality=quality,
            originality="collaboration",
            router="p",
            gamma=0.4,
            seed=1,
        )
    markdown = session_markdown(store.session(sid), [], store.votes(sid))
    assert "| A \\| B | collaboration | collaboration | p γ0.40 |" in markdown
    assert "Quality: collaboration 50% · aligned 50% · ties 0 (of 2)" in markdown
    assert "Originality: collaboration 100%" in markdown


def test_export_session_writes_whole_files(tmp_path):
    store = SessionStore(tmp_path / "data" / "s.sqlite3")
    sid = _chat_session(store)
    md = export_session(store, sid, "markdown")
    js = export_session(store, sid, "json")
    assert md == tmp_path / "data" / "exports" / f"{sid}-moons.md"
    assert md.read_text().startswith("# Moons")
    assert json.loads(js.read_text())["session"]["id"] == sid
    assert sorted(p.name for p in md.parent.iterdir()) == [f"{sid}-moons.json", f"{sid}-moons.md"]
    with pytest.raises(BacoError, match="Unknown export format"):
        export_session(store, sid, "pdf")


# --- the settings panel ------------------------------------------------------------------

VALUES = {
    "gamma": "0.4",
    "temperature": "0.7",
    "top_p": "0.9",
    "top_k": "20",
    "min_p": "0.1",
    "max_tokens": "64",
    "seed": "",
}


def test_parse_fields_builds_validated_settings():
    settings = parse_fields(VALUES, GenerationSettings(seed=5), "p")
    assert (settings.router, settings.gamma, settings.temperature, settings.top_k) == (
        "p",
        0.4,
        0.7,
        20,
    )
    assert settings.seed is None  # empty seed field = a fresh seed each time
    assert parse_fields(VALUES, GenerationSettings(), "aligned").gamma is None


def test_parse_fields_errors_name_the_field():
    with pytest.raises(SettingsError, match="temperature"):
        parse_fields(VALUES | {"temperature": "warm"}, GenerationSettings(), "p")
    with pytest.raises(SettingsError, match="temperature 9.0 is out of range"):
        parse_fields(VALUES | {"temperature": "9"}, GenerationSettings(), "p")
    with pytest.raises(SettingsError, match="whole number"):
        parse_fields(VALUES | {"max_tokens": "1.5"}, GenerationSettings(), "p")
    with pytest.raises(SettingsError, match="gamma 3.0 is out of range"):
        parse_fields(VALUES | {"gamma": "3"}, GenerationSettings(), "p")


def test_the_panel_has_every_setting_and_stop_strings_survive_a_round_trip():
    from tui.screens.settings import FIELDS, field_text

    assert ["router"] + [f.name for f in FIELDS] == [
        f.name for f in dataclasses.fields(GenerationSettings)
    ]
    settings = GenerationSettings(stop=("END\n", "a|b", "back\\slash"), speculative="off")
    typed = {f.name: field_text(f, getattr(settings, f.name)) for f in FIELDS}
    assert typed["stop"] == "END\\n | a\\x7cb | back\\\\slash"
    assert parse_fields(typed, GenerationSettings(), settings.router) == settings
    with pytest.raises(SettingsError, match="speculative"):
        parse_fields(typed | {"speculative": "maybe"}, settings, "p")
    # a panel saved without touching a field keeps its value exactly, spaces included
    spaced = GenerationSettings(stop=(" User:", "END "), temperature=0.123456789)
    shown = {f.name: field_text(f, getattr(spaced, f.name)) for f in FIELDS}
    assert parse_fields(shown, spaced, spaced.router) == spaced
    assert parse_fields(shown | {"top_k": "7"}, spaced, spaced.router).stop == spaced.stop


# --- the command -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["chat", "--temperature", "9"], "temperature 9.0 is out of range"),
        (["chat", "--aligned", "a.gguf"], "--aligned needs --base too"),
        (["chat", "--answers", "1"], "--answers 1 is out of range"),
        (["chat", "--router", "sometimes"], "Unknown router 'sometimes'"),
    ],
)
def test_chat_command_checks_options_before_opening(argv, message, capsys):
    from baco_local.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "hint:" in err and "Traceback" not in err

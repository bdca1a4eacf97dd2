"""What the terminal app remembers between runs (tui.preferences), and how `baco chat`
puts it together with its own options."""

from __future__ import annotations

import json

import pytest

from baco_local.cli import main
from tui import preferences
from tui.preferences import Remembered


def test_choices_come_back_as_they_were_saved(tmp_path):
    path = tmp_path / "config" / "chat.json"  # the folder is made on the first save
    kept = Remembered({"router": "p", "gamma": 0.6, "stop": ("END", "\n\n")}, brainstorm_n=7)
    preferences.save(path, kept)
    assert preferences.load(path) == (kept, None)
    assert [p.name for p in path.parent.iterdir()] == ["chat.json"]  # no temporary left


def test_no_file_yet_is_no_choices_and_no_warning(tmp_path):
    assert preferences.load(tmp_path / "chat.json") == (Remembered(), None)


@pytest.mark.parametrize(
    "text, said",
    [
        ("{not json", "does not hold settings"),
        ('["router", "p"]', "does not hold settings"),
    ],
)
def test_a_file_that_cannot_be_read_is_set_aside_with_a_warning(tmp_path, text, said):
    path = tmp_path / "chat.json"
    path.write_text(text, encoding="utf-8")
    remembered, warning = preferences.load(path)
    assert remembered == Remembered()
    assert said in warning and str(path) in warning
    assert path.read_text(encoding="utf-8") == text  # nothing is lost until the next change


@pytest.mark.parametrize(
    "settings, kept, said",
    [
        ({"router": "p", "gamma": 7, "top_k": 12}, {"router": "p", "top_k": 12}, "gamma 7"),
        ({"router": "nope", "gamma": 0.3, "top_k": 12}, {"top_k": 12}, "nope"),
        ({"temperature": "hot", "top_k": 12}, {"top_k": 12}, 'temperature is "hot", not a number'),
        ({"stop": "END", "top_k": 12}, {"top_k": 12}, "stop is not a list"),
    ],
)
def test_values_no_longer_valid_are_left_out_and_the_rest_kept(tmp_path, settings, kept, said):
    path = tmp_path / "chat.json"
    path.write_text(json.dumps({"settings": settings}), encoding="utf-8")
    remembered, warning = preferences.load(path)
    assert remembered.settings == kept
    assert said in warning and str(path) in warning and "left out" in warning


def test_fields_this_version_does_not_know_are_left_out(tmp_path):
    path = tmp_path / "chat.json"
    path.write_text('{"settings": {"top_k": 12, "warp_factor": 9}, "brainstorm_n": 50}')
    remembered, warning = preferences.load(path)
    assert warning is None
    assert remembered == Remembered({"top_k": 12}, brainstorm_n=None)  # 50 is out of range


def test_a_seed_is_never_taken_from_the_file(tmp_path):
    path = tmp_path / "chat.json"
    path.write_text('{"settings": {"seed": 4, "top_k": 3}}')
    assert preferences.load(path) == (Remembered({"top_k": 3}), None)


def test_the_command_line_goes_on_top_and_a_gamma_stays_with_its_router():
    kept = {"router": "p", "gamma": 0.6, "temperature": 0.9}
    other = preferences.on_top(kept, {"router": "h-punc"})
    assert other == {"router": "h-punc", "temperature": 0.9}
    # a gamma alone is for the pair's router, as when nothing is remembered
    assert preferences.on_top(kept, {"gamma": 0.4}) == {"gamma": 0.4, "temperature": 0.9}
    assert preferences.on_top(kept, {"router": "p", "gamma": 0.4}) == {**kept, "gamma": 0.4}
    assert preferences.on_top(kept, {"router": "p"}) == kept
    assert preferences.on_top(kept, {"temperature": 0.2}) == {**kept, "temperature": 0.2}


class SeenApp:
    """Stands in for the terminal app: records what `baco chat` would open it with."""

    opened: list[dict] = []

    def __init__(self, load_pair, **options):
        SeenApp.opened.append(options)
        self.return_code = 0

    def run(self):
        pass

    def close_pair(self):
        pass


@pytest.fixture
def seen_app(monkeypatch):
    import tui.app

    SeenApp.opened = []
    monkeypatch.setattr(tui.app, "BacoApp", SeenApp)
    return SeenApp.opened


def test_baco_chat_opens_with_the_remembered_choices_under_its_options(fresh_home, seen_app):
    path = preferences.default_path()
    preferences.save(path, Remembered({"router": "p", "gamma": 0.6, "top_k": 12}, brainstorm_n=7))
    assert main(["chat", "--router", "h-punc", "--temperature", "0.5"]) == 0
    assert main(["chat", "--answers", "3"]) == 0
    assert main(["chat", "--forget"]) == 0
    given, plain, forgot = seen_app
    assert given["chosen"] == {"router": "h-punc", "top_k": 12, "temperature": 0.5}
    assert given["brainstorm_n"] == 7 and given["remember"] == path
    assert given["remembered"].settings == {"router": "p", "gamma": 0.6, "top_k": 12}
    assert (plain["settings"].router, plain["settings"].gamma) == ("p", 0.6)  # while loading
    assert plain["brainstorm_n"] == 3
    assert forgot["chosen"] == {} and forgot["remembered"] == Remembered()
    assert forgot["brainstorm_n"] == 5
    assert all(not opened["notes"] for opened in seen_app)


def test_baco_chat_opens_despite_a_broken_file_and_says_so(fresh_home, seen_app):
    path = preferences.default_path()
    path.parent.mkdir(parents=True)
    path.write_text('{"settings": {"gamma": "high"}}')
    assert main(["chat"]) == 0
    (opened,) = seen_app
    assert opened["chosen"] == {}
    (note,) = opened["notes"]
    assert "left out" in note and str(path) in note
    assert json.loads(path.read_text()) == {"settings": {"gamma": "high"}}

"""One list of settings: every GenerationSettings field reaches the CLI, the server and
`llm` under its own name, and a catalog pair's recommendations apply the same way in the
Python API, `baco run` and `baco chat`."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import pytest

from baco_local import Pair
from baco_local.cli import build_parser, main
from baco_local.cli.common import generation_changes_from
from baco_local.core.settings import GenerationSettings
from baco_local.core.settings_fields import generation_fields
from baco_local.errors import SettingsError
from baco_local.paths import config_dir
from baco_local.server.errors import ApiError
from baco_local.server.protocol import parse_chat, parse_completion

NAMES = [f.name for f in dataclasses.fields(GenerationSettings)]


def sample_value(setting):
    """A valid value for each field that differs from its default."""
    if setting.name == "router":
        return "p"  # gamma's sample (0.3) is in p's range
    if setting.choices:
        return next(c for c in setting.choices if c != setting.default)
    if setting.repeated:
        return ("END", "###")
    if setting.kind is int:
        return (setting.default or 0) + 7
    if setting.kind is float:
        return 0.3 if setting.default is None else round(setting.default * 0.9, 3)
    raise AssertionError(f"add a sample value for the new field {setting.name}")


SAMPLE = {f.name: sample_value(f) for f in generation_fields()}


def cli_words(sample: dict) -> list[str]:
    words = []
    for setting in generation_fields():
        values = sample[setting.name]
        for value in values if setting.repeated else [values]:
            words += [setting.option, str(value)]
    return words


def test_the_field_list_is_the_dataclass_and_every_field_has_help():
    assert [f.name for f in generation_fields()] == NAMES
    assert "speculative" in NAMES  # speculative collaboration comes through too
    for setting in generation_fields():
        assert setting.help and len(setting.help) > 10, setting.name
    GenerationSettings(**SAMPLE)  # the samples are valid settings


@pytest.mark.parametrize("command", ["run", "chat", "serve"])
def test_every_field_is_a_cli_option_of_the_same_name(command):
    args = build_parser().parse_args([command, *cli_words(SAMPLE)])
    assert generation_changes_from(args) == SAMPLE
    help_text = build_parser()._subparsers._group_actions[0].choices[command].format_help()
    for setting in generation_fields():
        assert setting.option in help_text


def test_options_left_out_are_not_choices():
    """The pair's recommendations fill what the command line leaves out."""
    args = build_parser().parse_args(["run", "hi", "--top-k", "5"])
    assert generation_changes_from(args) == {"top_k": 5}


def test_every_field_is_a_server_request_field_of_the_same_name():
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}], **SAMPLE}).encode()
    for parse in (parse_chat, parse_completion):
        if parse is parse_completion:
            body = json.dumps({"prompt": "hi", **SAMPLE}).encode()
        settings = parse(body, GenerationSettings(), "tiny").settings
        assert {name: getattr(settings, name) for name in NAMES} == SAMPLE


@pytest.mark.parametrize(
    ("field", "value"),
    [("lead", True), ("top_k", True), ("speculative", "sometimes"), ("router", ["p"])],
)
def test_a_bad_request_field_is_named_in_the_error(field, value):
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}], field: value})
    with pytest.raises(ApiError) as caught:
        parse_chat(body.encode(), GenerationSettings(), "tiny")
    assert caught.value.param == field


LLM_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from baco_local.llm_plugin import BacoModel, _changes

    sample = json.loads(sys.argv[1])
    options = BacoModel.Options(**sample)
    helps = {name: f.description for name, f in BacoModel.Options.model_fields.items()}
    print(json.dumps({"changes": _changes(options), "helps": helps,
                      "one_stop": _changes(BacoModel.Options(stop="END"))}))
    """
)


def test_every_field_is_an_llm_option_of_the_same_name(tmp_path):
    pytest.importorskip("llm", reason="needs simonw's llm (demo or dev extra)")
    env = dict(os.environ, LLM_USER_PATH=str(tmp_path / "llm"))
    done = subprocess.run(
        [sys.executable, "-c", LLM_SCRIPT, json.dumps(SAMPLE)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    expected = {k: list(v) if isinstance(v, tuple) else v for k, v in SAMPLE.items()}
    assert found["changes"] == expected
    assert found["one_stop"] == {"stop": ["END"]}  # `llm -o stop END` gives one string
    helps = {f.name: f.help for f in generation_fields()}
    assert {name: found["helps"][name] for name in NAMES} == helps


def test_n_true_is_not_a_count(tiny_pair):
    for call in (tiny_pair.brainstorm, tiny_pair.stream_answers):
        with pytest.raises(SettingsError):
            call("The cat", n=True)
    with pytest.raises(SettingsError):
        GenerationSettings(max_tokens=True)


# --- the catalog's recommendations, in one place ------------------------------------


@pytest.fixture
def lead_pair(tiny, fresh_home):
    """A catalog pair of local files whose recommended lead (0) and sampler are not the
    defaults."""
    path = config_dir() / "models.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        textwrap.dedent(
            f"""
            [pairs.leadless]
            description = "tiny pair with a catalog lead of 0"
            router = "p"
            gamma = 0.6
            lead = 0
            sampler = "min-p"
            temperature = 1.2

            [pairs.leadless.base]
            path = "{tiny.base}"
            format = "transcript"

            [pairs.leadless.aligned]
            path = "{tiny.aligned}"
            format = "template"
            """
        ),
        encoding="utf-8",
    )
    return "leadless"


RECOMMENDED = {"router": "p", "gamma": 0.6, "lead": 0, "min_p": 0.1, "top_k": 0}


def run_json(capsys, *words) -> dict:
    code = main(["run", "The cat", "--json", "--max-tokens", "4", "--seed", "1", *words])
    out = capsys.readouterr().out
    assert code == 0, out
    record = json.loads(out)
    return {"router": record["router"], "gamma": record["gamma"], **record["settings"]}


def test_baco_run_applies_the_pair_recommendations_as_the_api_does(lead_pair, capsys):
    with Pair.load(lead_pair, n_ctx=512) as pair:
        api = pair.generate("The cat", max_tokens=4, seed=1).settings
        api_top_k = pair.generate("The cat", max_tokens=4, seed=1, top_k=5).settings
    assert {k: getattr(api, k) for k in RECOMMENDED} == RECOMMENDED
    assert api.temperature == 1.2
    cli = run_json(capsys, "--pair", lead_pair, "--ctx", "512")
    assert {k: cli[k] for k in RECOMMENDED} == RECOMMENDED
    assert cli["temperature"] == 1.2
    # an option given wins over the recommendation, the rest still follow the pair
    cli = run_json(capsys, "--pair", lead_pair, "--ctx", "512", "--top-k", "5")
    assert cli["top_k"] == api_top_k.top_k == 5 and cli["lead"] == api_top_k.lead == 0
    # a router given brings its own gamma; the pair's lead and sampler stay
    cli = run_json(capsys, "--pair", lead_pair, "--ctx", "512", "--router", "h")
    assert (cli["router"], cli["gamma"], cli["lead"]) == ("h", 1.5, 0)


def test_baco_chat_takes_the_same_settings(lead_pair, monkeypatch):
    import tui.app

    seen = {}

    def fake_run(app):
        seen["follow_pair"], seen["chosen"] = app.follow_pair, dict(app.chosen)

    monkeypatch.setattr(tui.app.BacoApp, "run", fake_run)
    assert main(["chat", "--pair", lead_pair, "--top-k", "5"]) == 0
    assert seen == {"follow_pair": True, "chosen": {"top_k": 5}}

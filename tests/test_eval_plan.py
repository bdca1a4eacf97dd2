"""Prompt sets, methods and their sweeps, the resumable store and the vector encoding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from baco_local.core.routers import ROUTERS
from baco_local.core.settings import GenerationSettings
from baco_local.errors import BacoError, SettingsError
from baco_local.eval import methods, tasks
from baco_local.eval.runner import WorkUnit, decode_vectors, encode_vectors
from baco_local.eval.store import RecordStore

NOVELTYBENCH = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "noveltybench-curated.jsonl"
)


@pytest.mark.parametrize("task", list(tasks.BUILTIN_TASKS))
def test_builtin_tasks_have_thirty_distinct_prompts(task):
    items = tasks.builtin_prompts(task)
    assert len(items) == 30
    assert len({i.id for i in items}) == 30 and len({i.prompt for i in items}) == 30
    assert all(i.task == task and i.prompt.strip() for i in items)


def test_unknown_task_suggests_a_name():
    with pytest.raises(BacoError, match="stories"):
        tasks.builtin_prompts("storys")


def test_noveltybench_file_loads_by_path():
    if not NOVELTYBENCH.exists():
        pytest.skip("the shared NoveltyBench file is not next to this checkout")
    items = tasks.load_prompt_file(NOVELTYBENCH)
    assert len(items) == 100
    assert items[0].id == "curated-0" and items[0].category == "Creativity"
    assert items[0].task == "noveltybench-curated"


def test_prompt_file_errors_name_the_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "a", "prompt": "Hi"}\n{"id": "b"}\n')
    with pytest.raises(BacoError, match="line 2 has no 'prompt'"):
        tasks.load_prompt_file(path)
    path.write_text('{"id": "a", "prompt": "Hi"}\n{"id": "a", "prompt": "Yo"}\n')
    with pytest.raises(BacoError, match="appears twice"):
        tasks.load_prompt_file(path)
    path.write_text("not json\n")
    with pytest.raises(BacoError, match="not valid JSON"):
        tasks.load_prompt_file(path)
    with pytest.raises(BacoError, match="not found"):
        tasks.load_prompt_file(tmp_path / "missing.jsonl")


def test_select_prompts_limits_each_task(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps({"id": str(i), "prompt": f"P{i}"}) + "\n" for i in range(4)))
    items = tasks.select_prompts(["dialogue"], [str(path)], limit=2)
    assert [(i.task, i.id) for i in items] == [
        ("dialogue", "dlg-00"),
        ("dialogue", "dlg-01"),
        ("mine", "0"),
        ("mine", "1"),
    ]


def test_points_of_routers_and_baselines():
    shared = GenerationSettings(temperature=0.8)
    items = methods.parse_methods("aligned@0.5/1, base, prompted, min-p, p-punc@0.3/0.6, punc")
    points = methods.build_points(items, shared)
    assert [p.label for p in points] == [
        "aligned@T0.5",
        "aligned@T1",
        "base",
        "prompted",
        "min-p@T1",
        "min-p@T1.5",
        "min-p@T2",
        "p-punc@0.3",
        "p-punc@0.6",
        "punc",
    ]
    by_label = {p.label: p for p in points}
    assert by_label["aligned@T1"].settings["router"] == "aligned"
    assert by_label["aligned@T1"].settings["temperature"] == 1.0
    assert by_label["min-p@T2"].settings | {"temperature": 0} == by_label["min-p@T1"].settings | {
        "temperature": 0
    }
    assert (
        by_label["min-p@T2"].settings["min_p"] == 0.1
        and by_label["min-p@T2"].settings["top_k"] == 0
    )
    assert by_label["prompted"].system == methods.BE_ORIGINAL
    assert by_label["p-punc@0.6"].settings["gamma"] == 0.6
    assert by_label["base"].settings["temperature"] == 0.8  # the shared sampling
    assert not methods.is_router_method("nudging") and methods.is_router_method("p-punc")


def test_gammas_apply_to_routers_without_their_own_values():
    points = methods.build_points(["p", "h@2"], GenerationSettings(), gammas=[0.1, 0.9])
    assert [p.label for p in points] == ["p@0.1", "p@0.9", "h@2"]


def test_a_router_combined_with_min_p_sweeps_gamma_and_temperature():
    shared = GenerationSettings(temperature=0.8, top_k=40, top_p=0.95, min_p=0.05)
    items = methods.parse_methods("p-punc@0.2/0.35+min-p@T1/1.5, punc+min-p")
    points = methods.build_points(items, shared)
    assert [p.label for p in points] == [
        "p-punc@0.2+min-p@T1",
        "p-punc@0.2+min-p@T1.5",
        "p-punc@0.35+min-p@T1",
        "p-punc@0.35+min-p@T1.5",
        "punc+min-p@T1",  # no values: temperature 1; a router without gamma has none
    ]
    second = points[1].settings
    assert (second["router"], second["gamma"], second["temperature"]) == ("p-punc", 0.2, 1.5)
    assert (second["min_p"], second["top_k"], second["top_p"]) == (0.1, 0, 1.0)  # as min-p
    assert {p.method for p in points} == {"p-punc+min-p", "punc+min-p"}
    assert all(methods.is_router_method(p.method) for p in points)  # BACo's, not a baseline
    assert methods.build_points(["p-punc+min-p"], shared, gammas=[0.4])[0].label == (
        "p-punc@0.4+min-p@T1"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nudging+min-p", "not the 'nudging' baseline"),
        ("p-punc+top-k", "Unknown sampler 'top-k'"),
        ("p-punc+", "names no sampler"),
        ("p-punc+min-p@Tx", "Cannot read the values"),
    ],
)
def test_combination_errors(text, message):
    with pytest.raises(BacoError, match=message):
        methods.build_points(methods.parse_methods(text), GenerationSettings())


def test_method_errors():
    with pytest.raises(BacoError, match="Did you mean 'p-punc'"):
        methods.parse_methods("p-punk")
    with pytest.raises(SettingsError, match="out of range"):
        methods.build_points(["p-punc@1.5"], GenerationSettings())
    with pytest.raises(SettingsError, match="no gamma"):
        methods.build_points(["punc@0.5"], GenerationSettings())
    with pytest.raises(SettingsError, match="Cannot read"):
        methods.build_points(["p@x"], GenerationSettings())
    with pytest.raises(SettingsError, match="twice"):
        methods.build_points(["p@0.5", "p@0.5"], GenerationSettings())


def test_ensemble_is_refused_until_the_engine_has_it():
    if "ensemble" in ROUTERS:
        points = methods.build_points(["ensemble"], GenerationSettings())
        assert [p.settings["gamma"] for p in points] == [0.25, 0.5, 0.75]
        assert "ensemble" in methods.default_methods()
    else:
        with pytest.raises(BacoError, match="ensemble"):
            methods.parse_methods("ensemble")
        assert "ensemble" not in methods.default_methods()


def test_unit_round_trips_and_keys_change_with_what_they_compute():
    item = tasks.builtin_prompts("stories")[0]
    point = methods.build_points(["p-punc@0.5"], GenerationSettings())[0]
    unit = WorkUnit.make(item, point, k=3, seed=7)
    again = WorkUnit.from_dict(json.loads(json.dumps(unit.to_dict())))
    assert again == unit and again.key("pair") == unit.key("pair")
    assert unit.key("pair") != unit.key("other pair")
    assert WorkUnit.make(item, point, k=4, seed=7).key("pair") != unit.key("pair")


def test_vectors_round_trip_through_json():
    vectors = np.array([[0.5, -0.25], [1.0, 0.0]])
    data = json.loads(json.dumps(encode_vectors(vectors)))
    np.testing.assert_allclose(decode_vectors(data), vectors)


def test_store_resumes_and_repairs_a_partial_last_line(tmp_path):
    path = tmp_path / "generations.jsonl"
    store = RecordStore(path)
    store.add({"key": "a", "n": 1})
    store.add({"key": "b", "n": 2})
    with path.open("a") as f:
        f.write('{"key": "c", "n"')  # a run killed mid-write
    reopened = RecordStore(path)
    assert "a" in reopened and "b" in reopened and "c" not in reopened
    assert reopened.dropped == 1
    assert path.read_text() == '{"key": "a", "n": 1}\n{"key": "b", "n": 2}\n'


@pytest.mark.parametrize(
    "content",
    ['{"some": "json"}\nfoo bar\n{"key": "x"}\n', "my notes\n", '{"key": "a"}\nnot ours\n'],
    ids=["lines in the middle", "one whole line", "a whole last line after a record"],
)
def test_store_refuses_a_file_of_other_lines_and_leaves_it(tmp_path, content):
    from baco_local.errors import BacoError

    path = tmp_path / "generations.jsonl"
    path.write_text(content)
    with pytest.raises(BacoError, match="is not a record written by baco eval"):
        RecordStore(path)
    assert path.read_text() == content

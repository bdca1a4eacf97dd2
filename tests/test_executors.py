"""The executors (here, processes) on a toy job, and the plain-data round trips that let
settings, requests and the eval config travel to workers."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections import Counter

import pytest
from executor_toys import load_toy, work_big, work_toy

from baco_local import GenerationSettings, LoadSettings, Message, Request
from baco_local.errors import BacoError
from baco_local.executors import Job, make_executor
from baco_local.executors.here import InProcess
from baco_local.executors.processes import Processes

TOY = Job(load_toy, work_toy, {"offset": 100})


@pytest.mark.parametrize("executor", [InProcess(), Processes(2)], ids=["here", "processes"])
def test_every_unit_reports_its_answers_then_done_once(executor):
    units = list(range(7))
    reports = list(executor.run(TOY, units))
    done = [r for r in reports if r.kind == "done"]
    assert sorted(r.data["value"] for r in done) == [100 + u for u in units]
    assert all(r.unit == r.data["unit"] for r in done)
    answers = Counter(r.unit for r in reports if r.kind == "answer")
    assert answers == Counter({u: u % 3 for u in units if u % 3})
    done_at = {r.unit: i for i, r in enumerate(reports) if r.kind == "done"}
    for i, report in enumerate(reports):  # a unit's answers come before its done
        if report.kind == "answer":
            assert i < done_at[report.unit]
    loaded = [r for r in reports if r.kind == "loaded"]
    pids = {r.data["pid"] for r in done}
    assert 1 <= len(loaded) == len(pids) <= 2  # each worker loads once


def test_processes_run_in_other_processes_here_in_this_one():
    here = [r.data["pid"] for r in InProcess().run(TOY, [1]) if r.kind == "done"]
    there = [r.data["pid"] for r in Processes(2).run(TOY, [1, 2]) if r.kind == "done"]
    assert here == [os.getpid()] and os.getpid() not in there


@pytest.mark.parametrize("executor", [InProcess(), Processes(2)], ids=["here", "processes"])
def test_a_worker_that_cannot_load_raises_the_error_with_its_hint(executor):
    broken = Job(load_toy, work_toy, {"offset": 0, "broken": True})
    with pytest.raises(BacoError, match="cannot load") as raised:
        list(executor.run(broken, [1, 2]))
    assert raised.value.hint == "mend the toy"


def test_closing_a_run_of_processes_early_ends_its_workers_at_once():
    reports = Processes(2).run(Job(load_toy, work_big, {}), list(range(6)))
    started = time.monotonic()
    next(reports), next(reports)
    reports.close()  # the workers are blocked on a queue nobody reads any more
    assert time.monotonic() - started < 30
    assert not multiprocessing.active_children()


def test_make_executor_picks_by_the_options():
    assert isinstance(make_executor(1), InProcess)
    assert isinstance(make_executor(None), InProcess)
    assert isinstance(make_executor(3), Processes) and make_executor(3).workers == 3


def test_settings_and_requests_round_trip_through_json():
    settings = GenerationSettings(router="p-punc", gamma=0.4, stop=("\n\n", "END"), seed=9)
    again = GenerationSettings.from_dict(json.loads(json.dumps(settings.to_dict())))
    assert again == settings
    load = LoadSettings(n_ctx=1024, n_threads=3, n_parallel=4)
    assert LoadSettings.from_dict(json.loads(json.dumps(load.to_dict()))) == load
    request = Request(
        "q1",
        (Message("system", "Be brief."), Message("user", "Hi")),
        settings,
        n=3,
        raw=True,
        first_answer=1,
    )
    assert Request.from_dict(json.loads(json.dumps(request.to_dict()))) == request


def test_the_eval_config_round_trips_and_keeps_its_identity(tmp_path):
    from baco_local.eval.runner import ResourceConfig
    from baco_local.pairs.loading import PairSpec

    config = ResourceConfig(
        PairSpec(tmp_path / "base.gguf", "in-context", name="x", router="p", gamma=0.3),
        LoadSettings(n_threads=1),
        None,
        ("a", "b"),
        None,
        {"pair": "x"},
    )
    again = ResourceConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again.identity() == config.identity()
    assert again.names == {"pair": "x"} and again.load == config.load
    assert again.spec.gamma == 0.3 and str(again.spec.base) == str(config.spec.base)

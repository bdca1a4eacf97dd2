"""The thread planner learns which plan is faster from timed steps (pure; fake times)."""

from __future__ import annotations

from baco_local.decoding.thread_plan import ONE_AFTER_THE_OTHER, SIDE_BY_SIDE, ThreadPlanner


def run(planner: ThreadPlanner, seconds: dict[str, float], steps: int) -> list[str]:
    chosen = []
    for _ in range(steps):
        plan = planner.choose("token")
        planner.record("token", plan, seconds[plan])
        chosen.append(plan)
    return chosen


def test_where_threads_barely_scale_it_keeps_side_by_side():
    planner = ThreadPlanner(2, explore=4, recheck_every=20)
    chosen = run(planner, {SIDE_BY_SIDE: 0.012, ONE_AFTER_THE_OTHER: 0.020}, 100)
    assert set(chosen[:8]) == {SIDE_BY_SIDE, ONE_AFTER_THE_OTHER}  # both were tried
    assert chosen[8:].count(SIDE_BY_SIDE) >= 90 - 10
    assert planner.best("token") == SIDE_BY_SIDE


def test_where_threads_scale_it_goes_one_after_the_other():
    planner = ThreadPlanner(2, explore=4, recheck_every=20)
    chosen = run(planner, {SIDE_BY_SIDE: 0.030, ONE_AFTER_THE_OTHER: 0.022}, 100)
    assert chosen[8:].count(ONE_AFTER_THE_OTHER) >= 90 - 10
    assert planner.describe()["token"]["plan"] == ONE_AFTER_THE_OTHER


def test_it_changes_its_mind_when_the_machine_does():
    planner = ThreadPlanner(2, explore=4, recheck_every=5, keep=5)
    run(planner, {SIDE_BY_SIDE: 0.010, ONE_AFTER_THE_OTHER: 0.020}, 40)
    assert planner.best("token") == SIDE_BY_SIDE
    # another program takes a core: side by side now waits for it
    run(planner, {SIDE_BY_SIDE: 0.050, ONE_AFTER_THE_OTHER: 0.020}, 80)
    assert planner.best("token") == ONE_AFTER_THE_OTHER


def test_one_thread_has_nothing_to_split():
    planner = ThreadPlanner(1)
    assert {planner.choose("batch") for _ in range(10)} == {ONE_AFTER_THE_OTHER}


def test_kinds_are_learned_apart():
    planner = ThreadPlanner(2, explore=2)
    for _ in range(10):
        for kind, fast in (("token", SIDE_BY_SIDE), ("batch", ONE_AFTER_THE_OTHER)):
            plan = planner.choose(kind)
            planner.record(kind, plan, 0.01 if plan == fast else 0.02)
    assert planner.best("token") == SIDE_BY_SIDE and planner.best("batch") == ONE_AFTER_THE_OTHER

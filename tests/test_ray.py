"""`baco eval --ray` and `baco batch --ray` on a local Ray instance of 2 CPUs, tiny pair:
the records of the local runs, an actor killed mid-run, a driver killed and rerun, a
node without the model files, and Ray missing."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the cluster extra (in dev) installs Ray")

from baco_local.cli import main  # noqa: E402
from baco_local.errors import BacoError  # noqa: E402
from baco_local.executors import Job  # noqa: E402
from baco_local.executors.ray_actors import RayActors, cluster_shape  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    """One local instance for the in-process tests (the executors join it, and leave it
    running); the subprocess tests start their own."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def write_lines(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def pair_args(tiny) -> list[str]:
    # Speculation off: `auto` decides by the draft costs it measures on the host, per
    # thread count, and its seeded answers are not the plain loop's; these tests compare
    # where work runs, not that (test_speculative does).
    return [
        "--base", str(tiny.base), "--aligned", str(tiny.aligned), "--ctx", "512",
        "--speculative", "off",
    ]  # fmt: skip


def eval_records(out: Path) -> dict[str, dict]:
    """The run's records by key, without their timing."""
    records = {}
    for line in (out / "generations.jsonl").read_text().splitlines():
        record = json.loads(line)
        record.pop("seconds")
        records[record["key"]] = record
    return records


def answers(path: Path) -> dict[tuple[str, int], dict]:
    """The answers file by (id, answer), without timings; each pair must appear once."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    keys = Counter((r["id"], r["answer"]) for r in rows)
    assert max(keys.values()) == 1, "an answer was written twice"
    return {(r["id"], r["answer"]): {**r, "stats": None} for r in rows}


@pytest.fixture
def prompts(tmp_path):
    rows = [{"id": f"p{i}", "prompt": f"Name a thing, number {i}."} for i in range(6)]
    return write_lines(tmp_path / "six.jsonl", rows)


def _eval(tiny, prompts, out, *extra) -> int:
    return main(
        [
            "eval", *pair_args(tiny),
            "--prompts", str(prompts),
            "-k", "2",
            "--max-tokens", "10",
            "--methods", "base,p-punc@0.5",
            "--embedding", "aligned",
            "--judge-check", "0",
            "--bootstrap", "0",
            "--out", str(out),
            *extra,
        ]
    )  # fmt: skip


def test_eval_on_two_actors_writes_the_records_of_two_processes(
    local_ray, tiny, prompts, tmp_path, capsys
):
    assert _eval(tiny, prompts, tmp_path / "processes", "--workers", "2") == 0
    assert _eval(tiny, prompts, tmp_path / "ray", "--workers", "2", "--ray") == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    here, there = eval_records(tmp_path / "processes"), eval_records(tmp_path / "ray")
    assert len(here) == 10 and here == there  # 5 prompts (--limit's default) x 2 methods
    assert local_ray.is_initialized()  # a cluster it joined is left running


def test_an_actor_killed_mid_run_loses_nothing(local_ray, tiny, prompts, tmp_path, capsys):
    from baco_local.eval.plan import open_store
    from baco_local.eval.pool import run_units

    assert _eval(tiny, prompts, tmp_path / "here") == 0
    capsys.readouterr()
    # The same units again (the plan of the run above), on two actors; the first
    # answer that arrives kills actor 0, which is then working a unit or about to.
    from baco_local.cli import build_parser
    from baco_local.cli.eval import evaluation_from

    args = build_parser().parse_args(
        ["eval", *pair_args(tiny), "--prompts", str(prompts), "-k", "2", "--max-tokens", "10",
         "--methods", "base,p-punc@0.5", "--embedding", "aligned"]
    )  # fmt: skip
    evaluation = evaluation_from(args)
    executor = RayActors(workers=2, threads=1)
    store = open_store(tmp_path / "killed")
    counted, news, free = [], [], []

    def progress(n: int) -> None:
        if not counted:
            free.append(local_ray.available_resources().get("CPU", 0))
            local_ray.kill(executor.actors[0])
        counted.append(n)

    run_units(
        list(evaluation.units),
        evaluation.config,
        store,
        executor=executor,
        progress=progress,
        on_news=news.append,
    )
    assert free == [0]  # each actor reserved its one thread: both CPUs taken
    assert any("run again" in line for line in news), news
    assert sum(counted) == len(evaluation.units) * 2  # answers of a retried unit count once
    expected = eval_records(tmp_path / "here")
    killed = eval_records(tmp_path / "killed")
    assert killed == expected
    lines = (tmp_path / "killed" / "generations.jsonl").read_text().splitlines()
    assert len(lines) == len(expected)  # no unit written twice


def test_batch_on_ray_writes_the_answers_of_one_process(local_ray, tiny, tmp_path, capsys):
    rows = [{"id": i, "prompt": f"Say something about {i}", "n": 2} for i in range(10)]
    rows.append({"id": "greedy", "prompt": "The dog", "temperature": 0, "router": "aligned"})
    prompts = write_lines(tmp_path / "prompts.jsonl", rows)
    common = [*pair_args(tiny), "--seed", "5", "--max-tokens", "12"]
    here, there = tmp_path / "here.jsonl", tmp_path / "ray.jsonl"
    assert main(["batch", str(prompts), "-o", str(here), *common]) == 0
    assert main(["batch", str(prompts), "-o", str(there), *common, "--ray", "--workers", "2"]) == 0
    err = capsys.readouterr().err
    assert "loaded: " in err and "done: 21 of 21 answers" in err
    assert answers(there) == answers(here) and len(answers(here)) == 21


def test_answer_many_on_ray_from_python(local_ray, tiny):
    from baco_local import GenerationSettings, Message, Request
    from baco_local.batch.job import answer_many

    settings = GenerationSettings(seed=3, max_tokens=8)
    requests = [Request(str(i), (Message("user", f"Hello {i}"),), settings, n=2) for i in range(4)]
    requests[3] = Request("3", requests[3].messages, settings, n=2, first_answer=1)
    found = list(
        answer_many(requests, base=tiny.base, aligned=tiny.aligned, ray="local", workers=2)
    )
    assert sorted((a["id"], a["answer"]) for a in found) == [
        ("0", 0), ("0", 1), ("1", 0), ("1", 1), ("2", 0), ("2", 1), ("3", 1)
    ]  # fmt: skip
    assert all(a["seed"] == 3 + a["answer"] and a["text"] for a in found)


def test_batch_in_two_processes_writes_the_answers_of_one(tiny, tmp_path, capsys):
    rows = [{"id": i, "prompt": f"Say something about {i}", "n": 2} for i in range(6)]
    prompts = write_lines(tmp_path / "prompts.jsonl", rows)
    common = [*pair_args(tiny), "--seed", "5", "--max-tokens", "12"]
    here, two = tmp_path / "here.jsonl", tmp_path / "two.jsonl"
    assert main(["batch", str(prompts), "-o", str(here), *common]) == 0
    assert main(["batch", str(prompts), "-o", str(two), *common, "--workers", "2"]) == 0
    assert answers(two) == answers(here) and len(answers(here)) == 12


def test_a_killed_driver_reruns_to_the_end_without_duplicates(tiny, tmp_path):
    rows = [{"id": i, "prompt": f"Tell me about {i}", "n": 2} for i in range(150)]
    prompts = write_lines(tmp_path / "prompts.jsonl", rows)
    out = tmp_path / "answers.jsonl"
    command = [
        sys.executable, "-m", "baco_local", "batch", str(prompts), "-o", str(out),
        *pair_args(tiny), "--seed", "9", "--max-tokens", "48", "--ray", "--workers", "2",
    ]  # fmt: skip
    kept = kill_once_written(command, out, 10)
    assert 10 <= kept < 300
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"continuing: {kept} of 300 answers" in again.stderr
    done = answers(out)
    assert sorted(done) == sorted((str(i), a) for i in range(150) for a in range(2))


def test_a_killed_eval_driver_reruns_to_the_end_without_duplicates(tiny, tmp_path):
    rows = [{"id": f"p{i}", "prompt": f"Tell me about {i}."} for i in range(12)]
    prompts = write_lines(tmp_path / "twelve.jsonl", rows)
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "baco_local", "eval", *pair_args(tiny),
        "--prompts", str(prompts), "--limit", "0", "-k", "3", "--max-tokens", "40",
        "--methods", "base,p-punc@0.5", "--embedding", "aligned", "--judge-check", "0",
        "--bootstrap", "0", "--out", str(out), "--ray", "--workers", "2",
    ]  # fmt: skip
    records = out / "generations.jsonl"
    kept = kill_once_written(command, records, 3)
    assert 3 <= kept < 24
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"{kept} of 24 units already in" in again.stderr
    keys = [json.loads(line)["key"] for line in records.read_text().splitlines() if line]
    assert len(keys) == len(set(keys)) == 24


def kill_once_written(command: list[str], path: Path, lines: int) -> int:
    """Start the command, SIGKILL it (the driver alone, as a crash would) once `path`
    holds `lines` lines; return how many whole lines it kept."""
    first = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 240
        while not path.exists() or len(path.read_text().splitlines()) < lines:
            assert first.poll() is None, "the run ended before it was killed"
            assert time.monotonic() < deadline, "nothing written within 4 minutes"
            time.sleep(0.1)
        first.kill()
        first.wait()
    finally:
        _stop_group(first)
    return whole_lines(path)


def whole_lines(path: Path) -> int:
    """Lines a killed writer finished (a rerun drops a half-written last one)."""
    text = path.read_text()
    return text[: text.rfind("\n") + 1].count("\n")


def _stop_group(process: subprocess.Popen) -> None:
    """What the killed driver's local Ray instance leaves behind (its agents linger for
    a minute before they notice), so later tests do not share the 2 cores with it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def test_a_node_without_the_model_files_is_named_with_the_fix(local_ray, tiny, tmp_path, capsys):
    prompts = write_lines(tmp_path / "prompts.jsonl", [{"id": 1, "prompt": "Hello"}])
    missing = tmp_path / "elsewhere" / "base.gguf"
    code = main(
        ["batch", str(prompts), "-o", str(tmp_path / "out.jsonl"), "--base", str(missing),
         "--aligned", str(tiny.aligned), "--ray", "--workers", "1"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert "Ray node" in err and "cannot load the pair" in err and str(missing) in err
    assert "same path" in err and "hint:" in err


def test_ray_missing_names_the_extra(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if not installed
    prompts = write_lines(tmp_path / "prompts.jsonl", [{"id": 1, "prompt": "Hello"}])
    out = tmp_path / "out.jsonl"
    code = main(["batch", str(prompts), "-o", str(out), *pair_args(tiny), "--ray"])
    err = capsys.readouterr().err
    assert code == 2 and "baco-local[cluster]" in err and "Traceback" not in err
    assert not out.exists()


@pytest.fixture
def toys(local_ray):
    """The toy jobs, pickled by value: Ray's workers need not find the tests folder."""
    import executor_toys

    ray.cloudpickle.register_pickle_by_value(executor_toys)
    yield executor_toys
    ray.cloudpickle.unregister_pickle_by_value(executor_toys)


def test_a_unit_given_back_late_is_taken_by_an_idle_actor(toys, tmp_path):
    """Unit 1's actor dies after every other unit was taken (and unit 0 ended, on the
    other actor or on the same one before): the actor left idle must take it (it used
    to have left already, and the run waited forever)."""
    units = [{"index": 0}, {"index": 1, "dies": str(tmp_path / "died"), "wait": 1.0}]
    job = Job(toys.load_toy, toys.work_dying, {})
    reports = list(RayActors(workers=2, threads=1).run(job, units))
    assert [r.unit for r in reports if r.kind == "retry"] == [1]
    done = [r for r in reports if r.kind == "done"]
    assert sorted(r.data["unit"] for r in done) == [0, 1]


def test_a_unit_that_kills_every_actor_stops_the_run_with_a_hint(toys):
    units = [{"index": 0, "dies": "always"}, {"index": 1, "wait": 0.5}]
    job = Job(toys.load_toy, toys.work_dying, {})
    with pytest.raises(BacoError, match="died") as raised:
        list(RayActors(workers=2, threads=1).run(job, units))
    assert "out of memory" in raised.value.hint


def test_actors_ray_cannot_place_are_named_then_run_when_cpus_free(toys, monkeypatch):
    from baco_local.executors import ray_actors

    monkeypatch.setattr(ray_actors, "PLACING_NOTE_S", 1)

    @ray.remote(num_cpus=2)
    class Hog:  # other work holding every CPU of the cluster
        def ready(self) -> bool:
            return True

    hog = Hog.remote()
    ray.get(hog.ready.remote())
    reports = RayActors(workers=1, threads=1).run(Job(toys.load_toy, toys.work_toy, {}), [1])
    kinds = []
    for report in reports:
        kinds.append(report.kind)
        if report.kind == "news":
            assert "wait for Ray to place them" in report.data and "ray status" in report.data
            ray.kill(hog)  # the CPUs come free: the actor is placed and works
    assert kinds.count("news") == 1 and kinds.index("news") < kinds.index("loaded")
    assert kinds[-1] == "done"


def test_a_node_that_finds_other_files_for_the_pair_refuses(local_ray, tmp_path):
    """The default pair resolves on the node; the driver planned with other files (a
    node on the demo fallback would run another pair under the same name)."""
    from baco_local.batch.job import batch_job
    from baco_local.core.settings import LoadSettings

    config = {
        "pair": None, "base": None, "aligned": None, "base_format": None,
        "aligned_format": None, "load": LoadSettings(n_ctx=512).to_dict(),
        "expect": ["some-other-base.gguf", "in-context"],
    }  # fmt: skip
    with pytest.raises(BacoError) as raised:
        list(RayActors(workers=1, threads=1).run(batch_job(config), [[]]))
    message = raised.value.message
    assert "Ray node" in message and "some-other-base.gguf + in-context" in message
    assert "baco models pull" in raised.value.hint


@pytest.mark.parametrize(
    ("nodes", "workers", "threads", "shape"),
    [
        ([2], None, None, (1, 2)),  # one actor per node, all its CPUs
        ([2], 2, None, (2, 1)),  # two actors share the node
        ([8, 8], None, None, (2, 8)),
        ([8, 4], None, None, (3, 4)),  # the smallest node sets the threads: 2 + 1 actors
        ([8, 8], 4, None, (4, 4)),
        ([8, 8], 3, 2, (3, 2)),
        ([16], 3, None, (3, 5)),
        ([8, 8], 3, None, (3, 4)),  # 4 threads: 2 + 2 actors fit, 5 would fit only 2
        ([8, 8, 8], 4, None, (4, 4)),
        ([2], 3, None, (3, 1)) if False else ([4], 3, None, (3, 1)),
    ],
)
def test_cluster_shape(nodes, workers, threads, shape):
    assert cluster_shape(nodes, workers, threads) == shape


def test_cluster_shape_refuses_what_does_not_fit():
    with pytest.raises(BacoError, match="room for 3 actor") as raised:
        cluster_shape([4, 2], 4, 2)  # 2 actors of 2 threads on the first node, 1 on the other
    assert "--workers 3" in raised.value.hint


def test_relative_model_paths_are_refused_on_ray(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tiny.base.parent)
    prompts = write_lines(tmp_path / "prompts.jsonl", [{"id": 1, "prompt": "Hello"}])
    out = tmp_path / "out.jsonl"
    code = main(["batch", str(prompts), "-o", str(out), "--base", tiny.base.name, "--ray"])
    err = capsys.readouterr().err
    assert code == 2 and f"--base {tiny.base.name} is a relative path" in err
    assert "absolute paths" in err and not out.exists()

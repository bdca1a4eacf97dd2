"""Run a job's units on Ray actors: the one module of baco that imports Ray.

Each actor reserves `num_cpus` equal to its llama.cpp threads (Ray reserves none for an
actor by default, and llama.cpp would count the whole machine), loads the job's
resources once, on its own node, and works units handed out one at a time, so a fast
actor takes more of them. A unit's events come back one call at a time, as they happen,
and are yielded to the caller, the one writer of files.

An actor that dies has its unit run again, from its start, on another actor (a "retry"
report first): up to MAX_ATTEMPTS times per unit. An actor that cannot load (a node
without the model files, or without baco-local) stops the run with an error naming
the node and the fix.

Address: "local" starts a Ray instance on this machine (stopped at the end); "auto"
joins the cluster `ray start` made here; "ray://HOST:PORT" joins a remote cluster
through Ray Client (with the cluster's token where it has one: Ray starts clusters with
token authentication, and its client sends the token only in token mode).
"""

from __future__ import annotations

import logging
import os
import queue as queue_module
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import BacoError
from . import Job, Placement, Report, error_data, loaded

LOCAL = "local"
MAX_ATTEMPTS = 3  # runs of one unit (the first, then retries after its actor died)
PLACING_NOTE_S = 60  # say so when no actor has loaded after this long


def import_ray(address: str | None = None):
    """Ray, or a BacoError naming the extra; for a Ray Client address (ray://), in
    token mode when a token is at hand (before Ray reads its settings)."""
    if address is not None and address.startswith("ray://"):
        _token_mode_if_a_token_is_here()
    try:
        import ray
    except ImportError:
        raise BacoError(
            "--ray needs Ray, which is not installed here.",
            "install the cluster extra: pip install 'baco-local[cluster]'",
        ) from None
    return ray


class Worker:
    """The actor: the job's resources on one node, loaded once."""

    def __init__(self, job: Job, threads: int):
        self.job, self.threads, self.resources = job, threads, None
        self.events: Iterator = iter(())

    def load(self) -> dict:
        where = _node_name()
        try:
            self.resources = self.job.load(self.job.config, Placement(self.threads, True))
        except BacoError as error:
            return {"node": where, "error": error_data(error)}
        return {"node": where, "report": loaded(where, self.resources)}

    def begin(self, unit: Any) -> None:
        self.events = iter(self.job.work(self.resources, unit))

    def next_event(self) -> tuple[str, Any]:
        """The unit's next event (its last is "done"). One call per event rather than a
        Ray streaming generator, which Ray Client (ray://) does not support; an event is
        an answer, so a round trip per event costs nothing that shows."""
        try:
            return next(self.events)
        except BacoError as error:
            return ("error", error_data(error))

    def close(self) -> None:
        if self.resources is not None:
            self.resources.close()
            self.resources = None


def _node_name() -> str:
    try:
        address = socket.gethostbyname(socket.gethostname())
    except OSError:
        address = "?"
    return f"{socket.gethostname()} ({address})"


class RayActors:
    def __init__(
        self, address: str = LOCAL, workers: int | None = None, threads: int | None = None
    ):
        self.address = address
        self.workers = workers
        self.threads = threads
        self.actors: list = []  # the live actors while a run goes on
        self._stopping = threading.Event()

    def run(self, job: Job, units: Sequence[Any]) -> Iterator[Report]:
        ray = import_ray(self.address)
        self._stopping.clear()
        started = time.perf_counter()
        owned = self._connect(ray)
        try:
            yield Report(-1, "started", time.perf_counter() - started)
            workers, threads = cluster_shape(_node_cpus(ray), self.workers, self.threads)
            yield from self._run(ray, job, units, min(workers, len(units)), threads)
        finally:
            self._stopping.set()  # the actors' threads may see Ray go: that is no news
            for actor in self.actors:
                ray.kill(actor)
            self.actors = []
            if owned:
                ray.shutdown()

    def _connect(self, ray) -> bool:
        """Join or start Ray; True when this run started it (and so stops it)."""
        if ray.is_initialized():
            return False
        options = {"logging_level": logging.WARNING, "log_to_driver": False}
        try:
            if self.address == LOCAL:
                # Ray says, on every local start, that it turned token auth on (it did:
                # that is its default); that is not news for a private instance.
                quiet = logging.getLogger("ray._private.authentication.authentication_token_setup")
                quiet.setLevel(logging.ERROR)
                ray.init(
                    address="local",
                    num_cpus=len(os.sched_getaffinity(0)),
                    include_dashboard=False,
                    **options,
                )
            else:
                ray.init(address=self.address, **options)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise BacoError(
                f"Cannot reach a Ray cluster at {self.address!r}: {error}",
                "start one with `ray start --head` (then --ray auto), give its address as "
                "ray://HOST:10001 (with the cluster's token in ~/.ray/auth_token, as `ray "
                "get-auth-token` prints it on the head), or use --ray alone for a local "
                "instance",
            ) from None
        return True

    def _run(self, ray, job: Job, units, workers: int, threads: int) -> Iterator[Report]:
        remote = ray.remote(Worker)
        self.actors = [
            remote.options(num_cpus=threads, max_restarts=0).remote(job, threads)
            for _ in range(workers)
        ]
        todo = _ToDo(len(units), self._stopping)
        reports: queue_module.Queue = queue_module.Queue()

        def drive(actor) -> None:
            try:
                work(actor)
            except Exception as error:  # Ray going away as the run stops, or a Ray bug
                if not self._stopping.is_set():
                    reports.put(Report(-1, "error", {"message": repr(error), "hint": None}))

        def work(actor) -> None:
            """One actor's thread: load, then take units until every unit is done."""
            try:
                answer = ray.get(actor.load.remote())
            except ray.exceptions.RayActorError as error:  # died loading (out of memory?)
                reports.put(Report(-1, "dead", _last_line(error)))
                return
            except ray.exceptions.RayError as error:
                reports.put(_cannot_start(error))
                return
            if "error" in answer:
                reports.put(_cannot_load(answer))
                return
            reports.put(answer["report"])
            while (index := todo.take()) is not None:
                try:
                    actor.begin.remote(units[index])
                    kind = None
                    while kind not in ("done", "error"):
                        kind, data = ray.get(actor.next_event.remote())
                        reports.put(Report(index, kind, data))
                except ray.exceptions.RayActorError as error:
                    why = _last_line(error)
                    if todo.attempts[index] >= MAX_ATTEMPTS:
                        reports.put(Report(index, "error", _spent(index, error)))
                    else:  # the retry report first: the rerun's answers come after it
                        reports.put(Report(index, "retry", f"its Ray actor died ({why})"))
                    reports.put(Report(-1, "dead", why))
                    todo.give_back(index)
                    return
                except ray.exceptions.RayError as error:  # not ours: a bug, with its cause
                    reports.put(
                        Report(index, "error", {"message": _last_line(error), "hint": None})
                    )
                    return
                todo.finished(index)

        for actor in self.actors:
            threading.Thread(target=drive, args=(actor,), daemon=True).start()
        finished, alive, placed = 0, len(self.actors), False
        since = time.monotonic()
        while finished < len(units):
            try:
                report = reports.get(timeout=0.2)
            except queue_module.Empty:
                if not placed and time.monotonic() - since > PLACING_NOTE_S:
                    placed = True  # said once
                    yield Report(-1, "news", _not_placed(workers, threads))
                continue
            placed = placed or report.kind == "loaded"
            if report.kind == "error":
                raise BacoError(report.data["message"], report.data["hint"])
            if report.kind == "dead":
                alive -= 1
                if alive == 0:
                    raise BacoError(
                        f"Every Ray actor died before the work was done (the last: {report.data}).",
                        "see the Ray logs on the nodes (out of memory? baco-local missing on a "
                        "node?); rerun the same command to continue: finished work is kept",
                    )
                continue
            finished += report.kind == "done"
            yield report


class _ToDo:
    """The units not yet done, shared by the actors' threads. An idle thread waits while
    units are out on other actors: one of them may die and give its unit back."""

    def __init__(self, count: int, stopping: threading.Event):
        self.waiting = deque(range(count))
        self.attempts = [0] * count
        self.out = 0  # units being worked
        self.stopping = stopping
        self.changed = threading.Condition()

    def take(self) -> int | None:
        """The next unit to work, or None once every unit is done (or the run stops)."""
        with self.changed:
            while not self.waiting and self.out and not self.stopping.is_set():
                self.changed.wait(timeout=0.5)
            if not self.waiting or self.stopping.is_set():
                return None
            index = self.waiting.popleft()
            self.attempts[index] += 1
            self.out += 1
            return index

    def finished(self, index: int) -> None:
        with self.changed:
            self.out -= 1
            self.changed.notify_all()

    def give_back(self, index: int) -> None:
        """Its actor died: the unit waits again (first in line), up to MAX_ATTEMPTS."""
        with self.changed:
            self.out -= 1
            if self.attempts[index] < MAX_ATTEMPTS:
                self.waiting.appendleft(index)
            self.changed.notify_all()


def _not_placed(workers: int, threads: int) -> str:
    return (
        f"no Ray actor has loaded after {PLACING_NOTE_S} s: {workers} actor(s) of {threads} "
        "CPU(s) wait for Ray to place them (other work may hold the cluster's CPUs: see "
        "`ray status`), or the models load slowly"
    )


def _spent(index: int, error: Exception) -> dict:
    return {
        "message": f"Unit {index} was tried {MAX_ATTEMPTS} times and its Ray actor died each "
        f"time ({_last_line(error)}).",
        "hint": "look for the cause in the Ray logs (out of memory?) on the nodes",
    }


def _last_line(error: Exception) -> str:
    """The gist of a Ray error (its text holds the remote traceback): the last line."""
    text = str(error).strip()
    return text.splitlines()[-1] if text else error.__class__.__name__


def _token_mode_if_a_token_is_here() -> None:
    """Ray Client sends the cluster's token only when RAY_AUTH_MODE is "token"; clusters
    started by `ray start` have token auth on and the token in ~/.ray/auth_token (or
    RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH). Where a token is at hand and no mode is set,
    use it, as Ray itself does when it starts a cluster."""
    if "RAY_AUTH_MODE" in os.environ:
        return
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.expanduser("~/.ray/auth_token")
    if os.environ.get("RAY_AUTH_TOKEN") or os.path.exists(path):
        os.environ["RAY_AUTH_MODE"] = "token"


def cluster_shape(
    node_cpus: list[int], workers: int | None, threads: int | None
) -> tuple[int, int]:
    """How many actors, of how many threads each, for nodes with these CPU counts.

    Threads default to the smallest node's CPUs when no number of workers is asked (one
    actor per node of equal nodes), else to the most that lets that many actors fit on
    the nodes; workers default to as many as the nodes hold. Raises a BacoError when the
    cluster cannot hold what was asked.
    """
    if not node_cpus:
        raise BacoError("The Ray cluster has no CPUs.", "add nodes with `ray start --address ...`")
    smallest = min(node_cpus)
    if threads is None and workers is None:
        threads = smallest
    elif threads is None:
        fits = [t for t in range(1, smallest + 1) if sum(c // t for c in node_cpus) >= workers]
        threads = max(fits, default=1)
    room = sum(cpus // threads for cpus in node_cpus)
    if workers is None:
        workers = room
    if room < workers or room == 0:
        raise BacoError(
            f"The Ray cluster has room for {room} actor(s) of {threads} thread(s) "
            f"(nodes with {', '.join(map(str, node_cpus))} CPUs), not {workers}.",
            f"ask for --workers {max(room, 1)} or fewer --threads, or add nodes",
        )
    return workers, threads


def _node_cpus(ray) -> list[int]:
    return [
        int(node["Resources"].get("CPU", 0))
        for node in ray.nodes()
        if node.get("Alive") and node["Resources"].get("CPU", 0) >= 1
    ]


def _cannot_load(loaded: dict) -> Report:
    error = loaded["error"]
    hint = error["hint"] + "; " if error["hint"] else ""
    return Report(
        -1,
        "error",
        {
            "message": f"Ray node {loaded['node']} cannot load the pair: {error['message']}",
            "hint": hint + "every node needs the model files at the same path (shared "
            "storage), or name a catalog pair (each node pulls it): --pair NAME",
        },
    )


def _cannot_start(error: Exception) -> Report:
    return Report(
        -1,
        "error",
        {
            "message": f"A Ray actor could not start: {_last_line(error)}",
            "hint": "install the same baco-local (and llama-cpp-python) on every node",
        },
    )

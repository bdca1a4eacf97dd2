"""`baco batch` as an executor job (baco_local.executors): each worker loads the pair
once, on its own machine, and answers shares of the prompts file with the batched loop.

config: {"pair": catalog name or None, "base", "aligned", "base_format",
"aligned_format", "load": LoadSettings.to_dict(), "expect": the two files' names the
driver found for a catalog pair (PairSpec.model_files), or None} (pair_config); a unit is
a share: a list of Request.to_dict(). Its events are answer_events'.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from ..core.settings import LoadSettings
from ..decoding.requests_many import Request
from ..errors import BacoError


def load_pair(config: dict, placement):
    """The pair named by config, found on this machine (a catalog name is pulled here)."""
    from dataclasses import replace

    from ..api import Pair
    from ..pairs.loading import LoadedPair

    load = LoadSettings.from_dict(config["load"])
    if placement.threads is not None:
        load = replace(load, n_threads=placement.threads)
    if config["base"] is not None:
        return Pair.load(
            base=config["base"],
            aligned=config["aligned"],
            base_format=config["base_format"],
            aligned_format=config["aligned_format"],
            settings=load,
        )
    from ..models.catalog import resolve_pair_spec

    spec = resolve_pair_spec(
        config["pair"], base_format=config["base_format"], aligned_format=config["aligned_format"]
    )
    if placement.elsewhere and config.get("expect"):
        spec.require_same_models(config["expect"])
    return Pair(LoadedPair(spec, load))


def answer_events(pair, requests: Iterable[Request]) -> Iterator[tuple[str, dict | None]]:
    """Answer the requests on this pair in one batch: ("answer", {"id", "answer",
    "result"}) as each ends (answers cut off by a stop are left out: a rerun writes them
    whole), ("skipped", {"id", "message"}) for a request that cannot be answered, then
    ("done", None). Closing it stops the answers still running."""
    skipped: list[tuple[Request, BacoError]] = []
    finished = pair.answer_all(requests, on_error=lambda r, e: skipped.append((r, e)))
    try:
        for item in finished:
            while skipped:
                request, error = skipped.pop()
                yield ("skipped", {"id": request.id, "message": error.message})
            if item.result.finish_reason != "cancelled":
                answer = {"id": item.request_id, "answer": item.answer}
                yield ("answer", {**answer, "result": item.result.to_dict()})
    finally:
        finished.close()
    for request, error in skipped:
        yield ("skipped", {"id": request.id, "message": error.message})
    yield ("done", None)


def answer_share(pair, share: list[dict]) -> Iterator[tuple[str, dict | None]]:
    return answer_events(pair, [Request.from_dict(data) for data in share])


def batch_job(config: dict):
    from ..executors import Job

    return Job(load_pair, answer_share, config)


def pair_config(
    name: str | None,
    base,
    aligned,
    base_format: str | None,
    aligned_format: str | None,
    load: LoadSettings,
    expect: tuple[str, str] | None = None,
) -> dict:
    """The job's config: the pair as named (a worker finds it on its own machine)."""
    return {
        "pair": name,
        "base": None if base is None else str(base),
        "aligned": None if aligned is None else str(aligned),
        "base_format": base_format,
        "aligned_format": aligned_format,
        "load": load.to_dict(),
        "expect": expect,
    }


def shares(requests: Sequence[Request], n_parallel: int) -> list[list[dict]]:
    """The requests in shares of about twice n_parallel answers each (enough to fill a
    worker's batch twice; a request is never split), in file order, as plain data."""
    result: list[list[dict]] = []
    share: list[dict] = []
    count = 0
    for request in requests:
        share.append(request.to_dict())
        count += request.n - request.first_answer
        if count >= 2 * n_parallel:
            result.append(share)
            share, count = [], 0
    if share:
        result.append(share)
    return result


def answer_many(
    requests: Iterable[Request],
    name: str | None = None,
    *,
    base: str | None = None,
    aligned: str | None = None,
    base_format: str | None = None,
    aligned_format: str | None = None,
    load: LoadSettings | None = None,
    workers: int | None = None,
    ray: str | None = None,
    threads: int | None = None,
) -> Iterator[dict]:
    """Answer many requests on `workers` processes or, with `ray` ("local", "auto",
    "ray://HOST:PORT"), on Ray actors, each loading the pair (a catalog name, or files
    every machine has at the same path) once. Yields each answer as it ends, as a line
    of `baco batch`'s output: {"id", "answer", "text", "seed", "finish_reason", ...}.
    Answers marked done by a request's first_answer are not answered again; closing the
    iterator stops the workers."""
    from ..executors import make_executor

    load = load or LoadSettings()
    config = pair_config(name, base, aligned, base_format, aligned_format, load)
    executor = make_executor(workers, ray, threads)
    reports = executor.run(batch_job(config), shares(list(requests), load.n_parallel))
    try:
        for report in reports:
            if report.kind == "answer":
                data = report.data
                yield {"id": data["id"], "answer": data["answer"], **data["result"]}
    finally:
        reports.close()

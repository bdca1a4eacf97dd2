"""`baco batch` as an executor job (baco_local.executors): each worker loads the pair
once, on its own machine, and answers shares of the prompts file with the batched loop.

config: {"pair": catalog name or None, "base", "aligned", "base_format",
"aligned_format", "load": LoadSettings.to_dict()}; a unit is a share: a list of
Request.to_dict(). Events: ("answer", {"id", "answer", "result": Result.to_dict()}) as
each answer ends, ("skipped", {"id", "message"}) for a request that cannot be answered,
then ("done", None).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ..core.settings import LoadSettings
from ..decoding.requests_many import Request
from ..errors import BacoError


def load_pair(config: dict, placement):
    """The pair named by config, found on this machine (a catalog name is pulled here)."""
    from dataclasses import replace

    from ..api import Pair

    load = LoadSettings.from_dict(config["load"])
    if placement.threads is not None:
        load = replace(load, n_threads=placement.threads)
    return Pair.load(
        config["pair"],
        base=config["base"],
        aligned=config["aligned"],
        base_format=config["base_format"],
        aligned_format=config["aligned_format"],
        settings=load,
    )


def answer_share(pair, share: list[dict]) -> Iterator[tuple[str, dict | None]]:
    skipped: list[tuple[Request, BacoError]] = []
    requests = [Request.from_dict(data) for data in share]
    finished = pair.answer_all(requests, on_error=lambda r, e: skipped.append((r, e)))
    try:
        for item in finished:
            while skipped:
                request, error = skipped.pop()
                yield ("skipped", {"id": request.id, "message": error.message})
            if item.result.finish_reason != "cancelled":
                yield (
                    "answer",
                    {"id": item.request_id, "answer": item.answer, "result": item.result.to_dict()},
                )
    finally:
        finished.close()
    for request, error in skipped:
        yield ("skipped", {"id": request.id, "message": error.message})
    yield ("done", None)


def batch_job(config: dict):
    from ..executors import Job

    return Job(load_pair, answer_share, config)


def shares(requests: Sequence[Request], answers_per_share: int) -> list[list[dict]]:
    """The requests in shares of about answers_per_share answers each (a request is never
    split), in file order, as plain data."""
    result: list[list[dict]] = []
    share: list[dict] = []
    count = 0
    for request in requests:
        share.append(request.to_dict())
        count += request.n - request.first_answer
        if count >= answers_per_share:
            result.append(share)
            share, count = [], 0
    if share:
        result.append(share)
    return result

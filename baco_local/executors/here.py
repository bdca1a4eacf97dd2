"""Run a job's units one after the other in this process, on resources loaded once."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from . import Job, Placement, Report, loaded


class InProcess:
    def run(self, job: Job, units: Sequence[Any]) -> Iterator[Report]:
        resources = job.load(job.config, Placement())
        try:
            yield loaded("this process", resources)
            for index, unit in enumerate(units):
                for kind, data in job.work(resources, unit):
                    yield Report(index, kind, data)
        finally:
            resources.close()

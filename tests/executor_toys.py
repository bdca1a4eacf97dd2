"""Toy jobs for the executor tests: no models, just units that answer, wait or die."""

from __future__ import annotations

import os
import time
from pathlib import Path

from baco_local.errors import BacoError


class Counted:
    """What a toy worker loads: a record of its process."""

    def __init__(self, config: dict):
        self.pid, self.offset = os.getpid(), config.get("offset", 0)

    def close(self) -> None:
        pass


def load_toy(config: dict, placement) -> Counted:
    if config.get("broken"):
        raise BacoError("the toy cannot load", "mend the toy")
    return Counted(config)


def work_toy(resources: Counted, unit: int):
    for i in range(unit % 3):
        yield ("answer", (unit, i))
    yield ("done", {"unit": unit, "value": unit + resources.offset, "pid": resources.pid})


def work_big(resources: Counted, unit: int):
    """Many large events: a worker nobody reads fills the queue and blocks."""
    for _ in range(50):
        yield ("answer", "x" * 100_000)
    yield ("done", unit)


def work_dying(resources: Counted, unit: dict):
    """unit: {"index", "dies": a marker file's path or None, "wait": seconds}. A unit with
    a marker kills its process the first time (the marker does not exist yet) after
    waiting; "always" kills it every time."""
    time.sleep(unit.get("wait", 0))
    marker = unit.get("dies")
    if marker == "always" or (marker and not Path(marker).exists()):
        if marker != "always":
            Path(marker).write_text("died once")
        os._exit(1)
    yield ("answer", unit["index"])
    yield ("done", {"unit": unit["index"], "pid": resources.pid})

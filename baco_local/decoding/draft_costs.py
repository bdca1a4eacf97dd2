"""The pair's draft costs on this host: measured once, then kept on disk.

The speculative loop's run lengths depend on these costs, and a seeded answer depends
on its run lengths only through llama.cpp's rounding (rows read in one batch may
differ from rows read one at a time in their last bits; on some models and hosts by
more). Measuring once and keeping the figures makes a seed replay the same on a host,
process after process. The file is keyed by both model files, the thread count, the
GPU layers, the llama.cpp build and the CPU; `baco bench` measures them afresh.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import platform

from ..backend import decode_thread
from ..backend.decode_costs import time_rows, time_together
from ..core.routers import ALIGNED, BASE
from ..files import write_atomic
from ..pairs.loading import LoadedPair
from ..paths import cache_dir
from .draft_plan import MAX_LENGTH, DraftCosts

_FILLER_TEXT = " the quiet harbour town woke slowly as the boats came back with the tide"


def draft_costs(pair: LoadedPair, n_threads: int, *, fresh: bool = False) -> DraftCosts:
    """The pair's costs with `n_threads` threads: kept in memory, then on disk, else
    measured now (a second or so) and stored. fresh: measure again and store."""
    key = _key(pair, n_threads)
    kept = pair.measurements.get(("draft_costs", key))
    if kept is not None and not fresh:
        return kept
    path = cache_dir() / "draft-costs" / f"{key}.json"
    costs = None if fresh else _read(path)
    if costs is None:
        costs = measure_draft_costs(pair, n_threads)
        with contextlib.suppress(OSError):  # a cache is optional
            write_atomic(path, json.dumps(costs.to_dict()))
    pair.measurements[("draft_costs", key)] = costs
    return costs


def measure_draft_costs(pair: LoadedPair, n_threads: int) -> DraftCosts:
    """Time the aligned model reading one token, and the base reading 1..MAX_LENGTH (on
    the decode thread, where the loop decodes)."""
    return decode_thread.run(_measure, pair, n_threads)


def _measure(pair: LoadedPair, n_threads: int) -> DraftCosts:
    seconds = {}
    for role, counts in ((ALIGNED, [1]), (BASE, list(range(1, MAX_LENGTH + 1)))):
        stream = pair.streams[role]
        stream.set_threads(n_threads)
        filler = stream.model.tokenize(_FILLER_TEXT * 2, special=False)
        seconds[role] = time_rows(stream, counts, filler)
    together = None
    if pair.one_context:  # a run of one is one decode of both models' tokens
        streams = [pair.streams[BASE], pair.streams[ALIGNED]]
        together = time_together(streams, streams[0].model.tokenize(_FILLER_TEXT, special=False))
    return DraftCosts(seconds[ALIGNED][0], tuple(seconds[BASE]), together)


def _read(path) -> DraftCosts | None:
    try:
        return DraftCosts.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _key(pair: LoadedPair, n_threads: int) -> str:
    import llama_cpp

    parts = [llama_cpp.__version__, platform.machine(), _cpu_name(), n_threads]
    parts.append("one context" if pair.one_context else "a context per model")
    for role in (BASE, ALIGNED):
        model = pair.streams[role].model
        stat = model.path.stat()
        parts += [str(model.path), stat.st_size, stat.st_mtime_ns, model.n_gpu_layers]
    return hashlib.sha256("\n".join(map(str, parts)).encode()).hexdigest()[:32]


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor()

"""What every bench measurement needs: the process's memory, and a pair made cold (no
prompt left in its caches) so that every run reads its prompt the same way."""

from __future__ import annotations

import sys


def resident_mb() -> tuple[float, float]:
    """(current, peak) resident memory of this process in MB."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            fields = dict(line.split(":", 1) for line in status)
        kb = lambda key: float(fields[key].split()[0])  # noqa: E731
        return kb("VmRSS") / 1024, kb("VmHWM") / 1024
    except (OSError, KeyError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak_mb = peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
        return peak_mb, peak_mb


def cold(pair) -> None:
    """Empty both streams: the next run reads its prompts from scratch."""
    for stream in pair.loaded.streams.values():
        stream.rollback(0)

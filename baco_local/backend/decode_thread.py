"""The threads every llama.cpp decode of the process runs on: the decode thread, and a
helper for the second model of a pair that decodes side by side.

llama.cpp's CPU backend runs each decode on an OpenMP team that belongs to the
calling thread, and libgomp waits at a barrier by spinning only while it manages no
more threads than the host has CPUs; past that it sleeps and is woken at every
barrier of every decode. A decode from a second thread makes a second team, and from
then on every decode of the process pays: measured on a 2-core host, 8 streams of the
in-context Gemma pair ran at 38-43 tokens/s when one thread had decoded and at 27-28
once the main thread had decoded too (`OMP_WAIT_POLICY=active` took the loss away,
which points at the wait). And a server's clients, or a terminal app's workers, each
decoding in their own thread, made one team each.

So `run` takes a decode (or a whole step of the loop, with its decodes) to the decode
thread, whichever thread asks; work already on one of these threads runs where it is.
"""

from __future__ import annotations

import threading
from concurrent import futures

_lock = threading.Lock()
_pools: dict[str, futures.ThreadPoolExecutor] = {}
_idents: set[int] = set()


def run(work, *args):
    """work(*args) on the decode thread (here, when already on a decode thread); its
    result or its error. Ctrl-C while it runs is raised once it has ended, so the caller
    may then free what it was decoding."""
    if threading.get_ident() in _idents:
        return work(*args)
    done = _pool("decode").submit(work, *args)
    wait(done)
    return done.result()


def helper() -> futures.ThreadPoolExecutor:
    """The helper thread, for a second decode side by side with the decode thread's."""
    return _pool("helper")


def wait(job: futures.Future) -> None:
    """Wait for a job to end, even through Ctrl-C (raised once it has ended)."""
    interrupted = None
    while True:
        try:
            futures.wait([job])
            break
        except BaseException as error:  # KeyboardInterrupt, mostly
            interrupted = error
    if interrupted is not None:
        raise interrupted


def _pool(name: str) -> futures.ThreadPoolExecutor:
    with _lock:
        pool = _pools.get(name)
        if pool is None:
            pool = futures.ThreadPoolExecutor(
                1, thread_name_prefix=f"baco-{name}", initializer=_register
            )
            _pools[name] = pool
        return pool


def _register() -> None:
    _idents.add(threading.get_ident())

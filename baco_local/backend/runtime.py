"""Process-wide llama.cpp state, and the file check that every load goes through first."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import sys
import threading
from collections import deque

_LOG_LEVEL_ERROR = 4
_LOG_LEVEL_CONT = 5


class _LlamaRuntime:
    """Process-wide llama.cpp state: backend init and our log callback.

    llama-cpp-python installs its own log callback when imported; we replace it on
    first use (never at import) so that llama.cpp is silent unless `verbose`, while
    its recent error lines are kept to explain a failed load.
    """

    _lock = threading.Lock()
    _instance: _LlamaRuntime | None = None

    def __init__(self):
        import llama_cpp

        self.llama = llama_cpp
        self.verbose = False
        self.recent_errors: deque[str] = deque(maxlen=8)
        self._last_level = 0
        # Keep a reference: ctypes callbacks are freed when garbage collected.
        self._callback = llama_cpp.llama_log_callback(self._on_log)
        llama_cpp.llama_log_set(self._callback, ctypes.c_void_p(0))
        llama_cpp.llama_backend_init()

    @classmethod
    def get(cls, verbose: bool = False) -> _LlamaRuntime:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            cls._instance.verbose = cls._instance.verbose or verbose
            return cls._instance

    def _on_log(self, level: int, text: bytes, _user_data) -> None:
        with contextlib.suppress(BaseException):  # nothing may cross back into C
            self._record(level, text)

    def _record(self, level: int, text: bytes) -> None:
        message = text.decode("utf-8", errors="replace") if text else ""
        if level == _LOG_LEVEL_CONT:
            level = self._last_level
        self._last_level = level
        if level == _LOG_LEVEL_ERROR and message.strip():
            self.recent_errors.append(message.strip())
        if self.verbose:
            sys.stderr.write(message)


class Interruptible:
    """Ctrl-C during a long native call (loading weights, making a context).

    A KeyboardInterrupt raised inside a ctypes callback is lost (Python prints
    "Exception ignored" and the load goes on). So, in the main thread, SIGINT only sets
    a flag here; `progress()` (llama.cpp's load progress callback) then returns False to
    abort the load, and leaving the block raises KeyboardInterrupt.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self) -> Interruptible:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def _on_sigint(self, _signum, _frame) -> None:
        self.requested = True

    def progress(self, _fraction: float, _user_data) -> bool:
        return not self.requested  # False aborts the load

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        if self.requested and exc[0] is None:
            raise KeyboardInterrupt


def gpu_available() -> bool:
    """True when this llama-cpp-python build can offload layers to a GPU (CUDA, Metal...)."""
    return bool(_LlamaRuntime.get().llama.llama_supports_gpu_offload())

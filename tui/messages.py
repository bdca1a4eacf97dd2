"""Messages that workers post to the app and its screens (Textual delivers them on the
event loop, so handlers may touch widgets and the store)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message


@dataclass
class PairLoaded(Message):
    """A pair finished loading. seconds: how long the load took."""

    pair: Any  # baco_local.Pair
    seconds: float
    load_id: int = 0  # which load_pair() call this answers; an older one is stale


@dataclass
class PairFailed(Message):
    """Loading a pair failed; error is a BacoError (or, for a bug, any exception)."""

    error: Exception
    what: str
    load_id: int = 0


@dataclass
class TokensArrived(Message):
    """Token events are waiting in the job's outbox (take them with `Job.take_events`)."""

    job: int


@dataclass
class AnswerDone(Message):
    """One answer finished (or was stopped); result is a baco_local Result. slot: which
    answer of the request (0 for chat; the card for brainstorm; A/B for compare)."""

    job: int
    slot: int
    result: Any


@dataclass
class AnswerFailed(Message):
    """An answer could not be generated (a BacoError such as a context overflow)."""

    job: int
    slot: int
    error: Exception


@dataclass
class JobFinished(Message):
    """Every answer of a request is done (or it was stopped)."""

    job: int


@dataclass
class PullProgress(Message):
    """Bytes of one file of a catalog pair downloaded so far."""

    name: str
    filename: str
    done: int
    total: int


@dataclass
class PullDone(Message):
    """A catalog pair finished downloading (error None) or failed."""

    name: str
    error: Exception | None

"""Many prompts, each answered n times with its own settings: what `Pair.answer_all` takes
and gives back (the engine behind `baco batch`, the server's concurrent clients, eval)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from ..core.events import Result
from ..core.settings import GenerationSettings, check_settings_object
from ..errors import SettingsError
from ..pairs.prompt_formats import Message, to_messages


@dataclass(frozen=True)
class Request:
    """One prompt to answer `n` times. Answer i uses `settings` with seed settings.seed + i
    (settings.seed must be set: a request replays by its seed)."""

    id: str
    messages: tuple[Message, ...]
    settings: GenerationSettings
    n: int = 1
    raw: bool = False
    first_answer: int = 0  # answers below this index are done already (a resumed run)
    ignore_end: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        messages = self.messages
        check_settings_object(self.settings, f"request {self.id!r}: settings")
        if not isinstance(messages, tuple) or any(not isinstance(m, Message) for m in messages):
            # a prompt string or {"role", "content"} dicts, as Pair.generate takes them
            object.__setattr__(self, "messages", to_messages(messages))
        if not isinstance(self.n, int) or isinstance(self.n, bool) or self.n < 1:
            raise SettingsError(
                f"request {self.id!r}: n must be a whole number of answers >= 1 (got {self.n!r}).",
                "ask for n=1 or more",
            )
        if self.settings.seed is None:
            raise SettingsError(
                f"request {self.id!r} has no seed (a request replays by its seed).",
                "give it one, e.g. settings.with_changes(seed=1); Pair.generate picks one",
            )
        if self.settings.seed + self.n - 1 >= 2**63:
            raise SettingsError(
                f"seed {self.settings.seed} leaves no room for {self.n} answers (answer i "
                "uses seed + i, and seeds go up to 2**63 - 1).",
                f"use a seed below {2**63 - self.n + 1}",
            )

    def answer_settings(self, index: int) -> GenerationSettings:
        return self.settings.with_changes(seed=self.settings.seed + index)

    def to_dict(self) -> dict:
        """Plain data (JSON-ready); from_dict(to_dict()) gives this request back."""
        return {
            "id": self.id,
            "messages": [{"role": m.role, "content": m.content} for m in self.messages],
            "settings": self.settings.to_dict(),
            "n": self.n,
            "raw": self.raw,
            "first_answer": self.first_answer,
            "ignore_end": self.ignore_end,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Request:
        return cls(
            data["id"],
            tuple(Message(m["role"], m["content"]) for m in data["messages"]),
            GenerationSettings.from_dict(data["settings"]),
            n=data["n"],
            raw=data["raw"],
            first_answer=data["first_answer"],
            ignore_end=data["ignore_end"],
        )


class Finished(NamedTuple):
    """One answer of one request, as it ends."""

    request_id: str
    answer: int  # its index among the request's n answers
    result: Result

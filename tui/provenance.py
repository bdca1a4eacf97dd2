"""Answer text kept as runs of (source, text): which model wrote which words.

Pure data: the widgets colour the runs, the store saves them, exports write them out.
"""

from __future__ import annotations

from collections.abc import Iterable

Run = tuple[str, str]  # (source, text); source is "base" or "aligned"


class SourcedText:
    """Text built token by token, remembering each piece's source in merged runs."""

    def __init__(self, runs: Iterable[Run] = ()):
        self._runs: list[list[str]] = []
        for source, text in runs:
            self.append(source, text)

    def append(self, source: str, text: str) -> None:
        if not text:
            return
        if self._runs and self._runs[-1][0] == source:
            self._runs[-1][1] += text
        else:
            self._runs.append([source, text])

    def extend(self, events) -> None:
        """Append TokenEvents (anything with .source and .text)."""
        for event in events:
            self.append(event.source, event.text)

    @property
    def runs(self) -> tuple[Run, ...]:
        return tuple((source, text) for source, text in self._runs)

    @property
    def text(self) -> str:
        return "".join(text for _, text in self._runs)

    def share(self, source: str) -> float:
        """Fraction of the characters written by `source` (0.0 for empty text)."""
        total = sum(len(text) for _, text in self._runs)
        mine = sum(len(text) for s, text in self._runs if s == source)
        return mine / total if total else 0.0

    def __bool__(self) -> bool:
        return bool(self._runs)

"""Token pieces -> text, safe across UTF-8 characters split between tokens, with stop strings.

Text that could be the beginning of a stop string is held back until it either
completes the stop string (then it is dropped, with everything after it) or stops
matching (then it is released). Released items keep their order.

Stop lines are whole lines that end an answer, such as a transcript's invented next
speaker ("### Guest:"): a line that begins with the pattern's prefix is held until it
ends, then dropped with everything after it if it matches (and, when the stop line
names sources, if one of its tokens came from them), or released if not.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from typing import Generic, NamedTuple, TypeVar


class StopLine(NamedTuple):
    prefix: str  # lines starting with this are held until complete
    pattern: re.Pattern  # a complete line (without its newline) that fully matches ends the answer
    sources: frozenset[str] | None = None  # only lines with a token from these (None: any)


Item = TypeVar("Item")


class TextStream(Generic[Item]):
    """Feed (item, piece bytes) pairs; get back (item, text) pairs ready to show."""

    def __init__(
        self,
        stops: tuple[str, ...] = (),
        stop_lines: tuple[StopLine, ...] = (),
        source_of: Callable[[Item], str] = lambda item: "",
    ):
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stops = tuple(s for s in stops if s)
        self._stop_lines = stop_lines
        self._source_of = source_of
        self._lines_checked = 0  # complete lines before this offset were checked
        self._longest = max((len(s) for s in self._stops), default=0)
        self._text = ""  # everything decoded so far, released or held
        self._released = 0  # length of self._text already released
        self._held: list[tuple[Item, int, int]] = []  # (item, start, end) in self._text
        self.stopped_by: str | None = None

    @property
    def text(self) -> str:
        """The text released so far."""
        return self._text[: self._released]

    def feed(self, item: Item, piece: bytes) -> list[tuple[Item, str]]:
        """Add one token's piece; return the items that can be shown now, with their text.

        After a stop string completes, `stopped_by` is set and the result holds the last
        items before it (their text cut where the stop string begins).
        """
        start = len(self._text)
        self._text += self._decoder.decode(piece)
        self._held.append((item, start, len(self._text)))
        cut = self._find_stop()
        if cut is not None:
            self._text = self._text[:cut]
            return self._release(upto=cut, cut=True)
        return self._release(upto=len(self._text) - self._partial_stop_length())

    def flush(self) -> list[tuple[Item, str]]:
        """Release everything held (the answer ended for another reason); an unfinished
        last line that matches a stop line is dropped."""
        self._text += self._decoder.decode(b"", final=True)
        if self._held:
            item, start, _ = self._held[-1]
            self._held[-1] = (item, start, len(self._text))
        self._text += "\n"  # end the last line for the check, then take the newline away
        cut = self._find_stop_line()
        self._text = self._text[:-1]
        if cut is not None and cut >= self._released:
            self._text = self._text[:cut]
            return self._release(upto=cut, cut=True)
        return self._release(upto=len(self._text))

    def _find_stop(self) -> int | None:
        found = [(index, "line") for index in [self._find_stop_line()] if index is not None]
        if self._stops:
            search_from = max(0, self._released - self._longest)
            found += [
                (index, stop)
                for stop in self._stops
                if (index := self._text.find(stop, search_from)) >= 0
            ]
        if not found:
            return None
        index, self.stopped_by = min(found)
        return max(index, self._released)  # released text is never taken back

    def _find_stop_line(self) -> int | None:
        """Start (at its newline) of the first complete line that matches a stop line."""
        if not self._stop_lines:
            return None
        end = self._text.rfind("\n")
        while self._lines_checked <= end:
            line_end = self._text.index("\n", self._lines_checked)
            line = self._text[self._lines_checked : line_end].rstrip()
            start = self._lines_checked
            self._lines_checked = line_end + 1
            if any(self._line_stops(stop, line, start, line_end) for stop in self._stop_lines):
                return max(start - 1, 0)  # drop the newline before it too
        return None

    def _line_stops(self, stop: StopLine, line: str, start: int, end: int) -> bool:
        if not stop.pattern.fullmatch(line):
            return False
        if stop.sources is None:
            return True
        written_by = {self._source_of(item) for item, a, b in self._held if a < end and b > start}
        return bool(written_by & stop.sources)

    def _partial_stop_length(self) -> int:
        """Length of the tail held back: it may begin a stop string or a stop line."""
        held = 0
        tail_max = min(self._longest - 1, len(self._text) - self._released)
        for length in range(tail_max, 0, -1):
            tail = self._text[-length:]
            if any(stop.startswith(tail) for stop in self._stops):
                held = length
                break
        line_start = self._text.rfind("\n") + 1
        line = self._text[line_start:]
        if any(
            line.startswith(stop.prefix) or stop.prefix.startswith(line)
            for stop in self._stop_lines
        ):
            held = max(held, len(self._text) - max(line_start - 1, 0))
        return min(held, len(self._text) - self._released)

    def _release(self, upto: int, cut: bool = False) -> list[tuple[Item, str]]:
        out = []
        while self._held:
            item, start, end = self._held[0]
            if end > upto and not (cut and start < upto):
                break
            if cut and end > upto:
                end = upto
            out.append((item, self._text[start:end]))
            self._released = end
            self._held.pop(0)
        if cut:
            self._held.clear()
            self._released = upto
        return out

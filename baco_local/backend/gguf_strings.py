"""Large GGUF string arrays (a tokenizer's token texts) located and compared with numpy.

A GGUF string is an 8-byte little-endian length followed by that many bytes, so finding
where each of 262,144 token texts starts is a chain: each start follows from the one
before. A Python loop over it costs ~30 ms for Gemma's vocabulary and a set of the
texts another ~120 ms; these functions do both in about 20 ms:

- `string_bounds` guesses every start at once (a length below 2**48 has two zero high
  bytes, and a text starts with a non-zero byte), then *proves* the guess: the first
  start is where the array begins and each start is exactly the previous start plus 8
  plus its length. If the proof fails (an empty or NUL-leading text),
  it returns None and the caller walks the chain in Python.
- `find_duplicate` sorts a 32-bit key per text (from its length and its first, middle
  and last 8 bytes) and compares the bytes of the few texts whose keys collide, so a
  duplicate is found exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_K_FIRST = np.uint64(0x9E3779B97F4A7C15)
_K_LAST = np.uint64(0xC2B2AE3D27D4EB4F)
_K_MIDDLE = np.uint64(0x27D4EB2F165667C5)
_K_LENGTH = np.uint64(0x165667B19E3779F9)


@dataclass(frozen=True, eq=False)
class StringArray:
    """`count` strings in a header's bytes: text i is raw[offsets[i] : offsets[i] + lengths[i]].

    offsets, lengths: int64 arrays of shape (count,).
    """

    offsets: np.ndarray
    lengths: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets)

    def item(self, raw: bytes, index: int) -> bytes:
        start = int(self.offsets[index])
        return raw[start : start + int(self.lengths[index])]


def string_bounds(data: bytes, start: int, count: int, stop: int) -> StringArray | None:
    """Offsets and lengths of `count` strings stored from data[start:], looked for before
    data[stop:]; None when the fast guess cannot be proven there (then look further,
    or walk them one by one)."""
    region = np.frombuffer(data, dtype=np.uint8, count=min(stop, len(data)) - start, offset=start)
    n = len(region)
    if count < 2 or n < 8 * count + 9:
        return None
    # a start: the top two bytes of its length are zero and its text's first byte is not
    # (inside a length field or a text, that pattern is rare; the proof below is exact)
    guess = np.not_equal(region[8:n], 0)
    scratch = np.empty_like(guess)  # one buffer for both comparisons: memory stays 2 n
    guess &= np.equal(region[6 : n - 2], 0, out=scratch)
    guess &= np.equal(region[7 : n - 1], 0, out=scratch)
    starts = np.flatnonzero(guess)[:count]
    if len(starts) < count or starts[0] != 0:
        return None
    words = np.ndarray((n - 7,), dtype="<u8", buffer=region, strides=(1,))
    lengths = words[starts].astype(np.int64)
    ends = starts + 8 + lengths
    if not np.array_equal(ends[:-1], starts[1:]) or ends[-1] > n:
        return None
    return StringArray(starts + start + 8, lengths)


def end_of(strings: StringArray) -> int:
    """The offset just past the last string."""
    return int(strings.offsets[-1] + strings.lengths[-1]) if len(strings) else 0


def find_duplicate(raw: bytes, strings: StringArray) -> tuple[int, int] | None:
    """The ids (i < j) of two equal strings, or None when all are different."""
    if len(strings) < 2:
        return None
    keys = _keys(raw, strings)
    ordered = np.sort(keys)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if not len(repeated):
        return None
    # some keys are equal: compare the texts behind them
    seen: dict[bytes, int] = {}
    for index in np.flatnonzero(np.isin(keys, repeated)).tolist():
        earlier = seen.setdefault(strings.item(raw, index), index)
        if earlier != index:
            return earlier, index
    return None


def _keys(raw: bytes, strings: StringArray) -> np.ndarray:
    """One uint32 per string from its length and its first, middle and last 8 bytes.

    Each 8-byte word is read so that it ends inside the text: for a text shorter than
    8 bytes it starts inside the text's length field, whose bytes equal texts share.
    """
    words = np.ndarray((len(raw) - 7,), dtype="<u8", buffer=raw, strides=(1,))
    offsets, lengths = strings.offsets - 8, strings.lengths  # offsets: the length fields
    first = words[offsets + np.minimum(lengths, 8)]
    middle = words[offsets + np.minimum(lengths // 2 + 4, lengths)]
    last = words[offsets + lengths]
    with np.errstate(over="ignore"):
        mixed = first * _K_FIRST + middle * _K_MIDDLE + last * _K_LAST
        mixed += lengths.astype(np.uint64) * _K_LENGTH
    return (mixed >> np.uint64(32)).astype(np.uint32)

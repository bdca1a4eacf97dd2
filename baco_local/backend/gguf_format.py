"""A bounded reader of a GGUF file's header: metadata and tensor descriptions, no weights.

GGUF (versions 2 and 3, little-endian) is: magic "GGUF", version (u32), tensor count and
key count (u64 each), the key/value pairs, one description per tensor (name, shape,
ggml type, offset), then the tensor data, aligned to `general.alignment` (default 32).

Every count and length read here is checked against what the file could hold before
anything is allocated, so a header that claims a billion-entry array or a terabyte
string is refused at once instead of exhausting memory. Large arrays are not decoded:
numeric ones are kept as a reference (type, count, offset) and string arrays (a
tokenizer's 262,144 token texts) as numpy offsets into the header bytes (see
gguf_strings.py). Problems raise GGUFFormatError with a sentence a person can read;
file_check.py turns it into a ModelFileError naming the file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from .gguf_strings import StringArray, end_of, string_bounds

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_HEADER_BYTES = 128 << 20  # metadata of real models: 0.1-30 MB
MAX_STRINGS = 1 << 22  # items in one string array: a vocabulary has up to ~300,000
MAX_KEY_BYTES = 1 << 16
MAX_TENSOR_NAME_BYTES = 63  # ggml's GGML_MAX_NAME is 64, with the terminating NUL
MAX_DIMS = 4  # ggml's GGML_MAX_DIMS
SMALL_ARRAY = 4096  # arrays up to this long are decoded into tuples
_FIRST_READ = 8 << 20

# GGUF value types: (struct format, size in bytes) for the fixed-size ones.
STRING, ARRAY = 8, 9
_SCALARS = {
    0: ("B", 1),  # uint8
    1: ("b", 1),  # int8
    2: ("H", 2),  # uint16
    3: ("h", 2),  # int16
    4: ("I", 4),  # uint32
    5: ("i", 4),  # int32
    6: ("f", 4),  # float32
    7: ("?", 1),  # bool
    10: ("Q", 8),  # uint64
    11: ("q", 8),  # int64
    12: ("d", 8),  # float64
}
TYPE_NAMES = {
    0: "uint8",
    1: "int8",
    2: "uint16",
    3: "int16",
    4: "uint32",
    5: "int32",
    6: "float32",
    7: "bool",
    8: "string",
    9: "array",
    10: "uint64",
    11: "int64",
    12: "float64",
}
INTEGER_TYPES = frozenset((0, 1, 2, 3, 4, 5, 10, 11))


class GGUFFormatError(Exception):
    """The bytes are not a well-formed GGUF header; the message says where and why."""


@dataclass(frozen=True)
class NumericArray:
    """A numeric array left in the file: its item type, length and where it starts."""

    item_type: int
    count: int
    offset: int


@dataclass(frozen=True)
class TensorInfo:
    """One tensor's description. shape is in ggml order (ne0 first: a row's length)."""

    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int  # from the start of the data section


@dataclass(frozen=True)
class GGUFHeader:
    """What the header of one file says. metadata values: int, float, bool, str, a tuple
    (small arrays), NumericArray or StringArray (large ones)."""

    version: int
    file_size: int
    metadata: dict
    value_types: dict  # key -> GGUF value type (for arrays: (ARRAY, item type))
    tensors: tuple[TensorInfo, ...]
    alignment: int
    data_offset: int
    raw: bytes  # the header bytes, which StringArray offsets point into


class _Reader:
    """Sequential reads from a file's start, fetched on demand and never past its end."""

    def __init__(self, file: BinaryIO, file_size: int):
        self.file = file
        self.file_size = file_size
        self.data = file.read(min(file_size, _FIRST_READ))
        self.pos = 0

    def need(self, n: int, what: str) -> None:
        """Make sure n more bytes are loaded; refuse what the file cannot hold."""
        end = self.pos + n
        if end > self.file_size:
            raise GGUFFormatError(
                f"{what} needs {n:,} bytes at offset {self.pos:,}, past the end of the "
                f"{self.file_size:,}-byte file"
            )
        if end > MAX_HEADER_BYTES:
            raise GGUFFormatError(
                f"the header goes on past {MAX_HEADER_BYTES >> 20} MB ({what}); "
                "no model's metadata is that large"
            )
        if end > len(self.data):
            want = min(max(end, 2 * len(self.data)), self.file_size, MAX_HEADER_BYTES)
            self.data += self.file.read(want - len(self.data))
            if len(self.data) < end:
                raise GGUFFormatError("the file got shorter while it was read")

    def scalar(self, fmt: str, size: int, what: str):
        self.need(size, what)
        (value,) = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return value

    def u32(self, what: str) -> int:
        return self.scalar("I", 4, what)

    def u64(self, what: str) -> int:
        return self.scalar("Q", 8, what)

    def string(self, what: str, limit: int | None = None) -> str:
        length = self.u64(what)
        if limit is not None and length > limit:
            raise GGUFFormatError(f"{what} claims {length:,} bytes (at most {limit:,} allowed)")
        self.need(length, what)
        raw = self.data[self.pos : self.pos + length]
        self.pos += length
        return raw.decode("utf-8", errors="replace")

    def remaining(self) -> int:
        return self.file_size - self.pos


def read_header(file: BinaryIO, file_size: int) -> GGUFHeader:
    """Read and check the header of an open GGUF file of `file_size` bytes."""
    reader = _Reader(file, file_size)
    reader.need(4, "the magic number")
    if reader.data[:4] != MAGIC:
        raise GGUFFormatError("it does not start with 'GGUF'")
    reader.pos = 4
    version = reader.u32("the version")
    if version not in SUPPORTED_VERSIONS:
        if version & 0xFFFF == 0 and (version >> 24) in SUPPORTED_VERSIONS:
            raise GGUFFormatError("it is a big-endian GGUF file, which this machine cannot load")
        raise GGUFFormatError(f"it is GGUF version {version}; llama.cpp reads versions 2 and 3")
    n_tensors = reader.u64("the tensor count")
    n_kv = reader.u64("the metadata count")
    # the smallest key/value pair is 13 bytes, the smallest tensor description 29
    if n_kv * 13 + n_tensors * 29 > reader.remaining():
        raise GGUFFormatError(
            f"it claims {n_kv:,} metadata entries and {n_tensors:,} tensors, more than "
            f"its {file_size:,} bytes could hold"
        )
    metadata, value_types = _read_metadata(reader, n_kv)
    tensors = _read_tensor_infos(reader, n_tensors)
    alignment = _alignment(metadata)
    data_offset = -(-reader.pos // alignment) * alignment
    return GGUFHeader(
        version=version,
        file_size=file_size,
        metadata=metadata,
        value_types=value_types,
        tensors=tensors,
        alignment=alignment,
        data_offset=data_offset,
        raw=reader.data,
    )


def _read_metadata(reader: _Reader, n_kv: int) -> tuple[dict, dict]:
    metadata: dict = {}
    value_types: dict = {}
    for index in range(n_kv):
        key = reader.string(f"metadata key #{index}", MAX_KEY_BYTES)
        if key in metadata:
            raise GGUFFormatError(f"the metadata key {key!r} appears twice")
        value_type = reader.u32(f"the type of {key!r}")
        if value_type == ARRAY:
            item_type = reader.u32(f"the item type of {key!r}")
            value_types[key] = (ARRAY, item_type)
            metadata[key] = _read_array(reader, key, item_type)
        else:
            value_types[key] = value_type
            metadata[key] = _read_value(reader, key, value_type)
    return metadata, value_types


def _read_value(reader: _Reader, key: str, value_type: int):
    if value_type == STRING:
        return reader.string(f"the value of {key!r}")
    if value_type not in _SCALARS:
        raise GGUFFormatError(f"the metadata key {key!r} has an unknown type ({value_type})")
    fmt, size = _SCALARS[value_type]
    return reader.scalar(fmt, size, f"the value of {key!r}")


def _read_array(reader: _Reader, key: str, item_type: int):
    count = reader.u64(f"the length of {key!r}")
    what = f"the {count:,}-item array {key!r}"
    if item_type == STRING:
        if count * 8 > reader.remaining():  # every string has an 8-byte length
            raise GGUFFormatError(f"{what} cannot fit in the rest of the file")
        if count > MAX_STRINGS:
            raise GGUFFormatError(f"{what} has more strings than any tokenizer ({MAX_STRINGS:,})")
        if count <= SMALL_ARRAY:
            return tuple(reader.string(f"item {i} of {key!r}") for i in range(count))
        return _read_strings(reader, count, what)
    if item_type not in _SCALARS:
        kind = "arrays of arrays" if item_type == ARRAY else f"item type {item_type}"
        raise GGUFFormatError(f"{what} has {kind}, which llama.cpp does not read")
    fmt, size = _SCALARS[item_type]
    if count * size > reader.remaining():
        raise GGUFFormatError(f"{what} cannot fit in the rest of the file")
    reader.need(count * size, what)
    start = reader.pos
    reader.pos += count * size
    if count <= SMALL_ARRAY:
        return struct.unpack_from(f"<{count}{fmt}", reader.data, start)
    return NumericArray(item_type, count, start)


def _read_strings(reader: _Reader, count: int, what: str) -> StringArray:
    """A large string array, located without decoding it (see gguf_strings.py)."""
    strings = None
    for bytes_per_string in (20, 96):  # a guess of its extent, then a wider one
        span = min(count * bytes_per_string, reader.remaining(), MAX_HEADER_BYTES - reader.pos)
        reader.need(span, what)
        strings = string_bounds(reader.data, reader.pos, count, reader.pos + span)
        if strings is not None:
            break
    if strings is None:
        strings = _walk_strings(reader, count, what)
    reader.pos = end_of(strings)
    return strings


def _walk_strings(reader: _Reader, count: int, what: str) -> StringArray:
    """The slow, general way: one length at a time (~0.5 us per string)."""
    offsets = np.empty(count, dtype=np.int64)
    lengths = np.empty(count, dtype=np.int64)
    start = reader.pos
    for index in range(count):
        length = reader.u64(what)
        reader.need(length, what)
        offsets[index] = reader.pos
        lengths[index] = length
        reader.pos += length
    reader.pos = start
    return StringArray(offsets, lengths)


def _read_tensor_infos(reader: _Reader, n_tensors: int) -> tuple[TensorInfo, ...]:
    tensors = []
    names = set()
    for index in range(n_tensors):
        name = reader.string(f"the name of tensor #{index}", MAX_TENSOR_NAME_BYTES)
        if name in names:
            raise GGUFFormatError(f"the tensor {name!r} appears twice")
        names.add(name)
        n_dims = reader.u32(f"the dimension count of {name!r}")
        if not 1 <= n_dims <= MAX_DIMS:
            raise GGUFFormatError(f"the tensor {name!r} has {n_dims} dimensions (1 to 4 allowed)")
        shape = tuple(reader.u64(f"the shape of {name!r}") for _ in range(n_dims))
        elements = 1
        for dim in shape:
            elements *= dim
        if elements >= 1 << 62:
            raise GGUFFormatError(f"the tensor {name!r} claims {elements:,} elements")
        ggml_type = reader.u32(f"the type of {name!r}")
        offset = reader.u64(f"the data offset of {name!r}")
        tensors.append(TensorInfo(name, shape, ggml_type, offset))
    return tuple(tensors)


def _alignment(metadata: dict) -> int:
    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    valid = isinstance(alignment, int) and not isinstance(alignment, bool)
    if not valid or alignment <= 0 or alignment & (alignment - 1):
        raise GGUFFormatError(f"general.alignment is {alignment!r}, not a power of two")
    return alignment


def article(noun: str) -> str:
    """'an array of int32', 'a string': for messages."""
    return f"an {noun}" if noun[:1] in "aeiou" else f"a {noun}"


def item_type_name(value_type) -> str:
    """'uint32' or 'array of string': for messages."""
    if isinstance(value_type, tuple):
        return f"array of {TYPE_NAMES.get(value_type[1], '?')}"
    return TYPE_NAMES.get(value_type, "?")


__all__ = [
    "GGUFFormatError",
    "GGUFHeader",
    "NumericArray",
    "StringArray",
    "TensorInfo",
    "read_header",
]

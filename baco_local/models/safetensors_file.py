"""Reading .safetensors files with numpy alone (no torch, no safetensors package).

The format: 8 bytes, little-endian, giving the length N of a JSON header; N bytes of
JSON mapping each tensor name to {"dtype", "shape", "data_offsets": [start, end]}
(offsets into the bytes after the header), plus an optional "__metadata__" entry;
then the raw tensor data, row-major, little-endian. Tensors are returned as read-only
views of one memory map, so nothing is copied until a caller converts them.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np

from ..errors import ModelFileError

DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "BF16": "<u2",  # no numpy bfloat16: widened to float32 by `bfloat16_to_float32`
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
    "BOOL": "?",
}
MAX_HEADER_BYTES = 100_000_000  # the format's own limit on the JSON header


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """{name: array} of every tensor in the file, in header order (BF16 as float32).

    Raises ModelFileError when the file is not a readable safetensors file.
    """
    path = Path(path)
    header, data_start = _read_header(path)
    size = path.stat().st_size
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=data_start, shape=size - data_start)
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        tensors[name] = _tensor(path, name, entry, data)
    return tensors


def _read_header(path: Path) -> tuple[dict, int]:
    try:
        with path.open("rb") as file:
            prefix = file.read(8)
            if len(prefix) < 8:
                raise _bad(path, "it is shorter than a safetensors header")
            (length,) = struct.unpack("<Q", prefix)
            if length > MAX_HEADER_BYTES or length > path.stat().st_size - 8:
                raise _bad(path, f"its header claims {length:,} bytes")
            header = json.loads(file.read(length))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _bad(path, f"its header cannot be read ({error})") from None
    if not isinstance(header, dict):
        raise _bad(path, "its header is not a JSON object")
    return header, 8 + length


def _tensor(path: Path, name: str, entry, data: np.ndarray) -> np.ndarray:
    try:
        dtype = np.dtype(DTYPES[entry["dtype"]])
        shape = tuple(int(n) for n in entry["shape"])
        start, end = (int(n) for n in entry["data_offsets"])
    except (KeyError, TypeError, ValueError):
        raise _bad(path, f"tensor {name!r} has an unreadable entry {entry!r}") from None
    count = int(np.prod(shape, dtype=np.int64))
    if not 0 <= start <= end <= len(data) or end - start != count * dtype.itemsize:
        raise _bad(path, f"tensor {name!r} lies outside the file or has the wrong size")
    array = data[start:end].view(dtype).reshape(shape)
    return bfloat16_to_float32(array) if entry["dtype"] == "BF16" else array


def bfloat16_to_float32(bits: np.ndarray) -> np.ndarray:
    """bfloat16 values stored as uint16 -> float32 (the high half of a float32)."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _bad(path: Path, why: str) -> ModelFileError:
    return ModelFileError(
        f"{path} is not a readable safetensors file: {why}.",
        "reinstall the package that ships it, or download the model again",
    )

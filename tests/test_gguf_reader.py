"""The bounded GGUF header reader and its numpy string arrays, on files written by gguf."""

from __future__ import annotations

import gguf
import numpy as np
import pytest

from baco_local.backend.gguf_checks import GGML_TYPE_SIZES
from baco_local.backend.gguf_format import SMALL_ARRAY, GGUFFormatError, read_header
from baco_local.backend.gguf_strings import StringArray, find_duplicate


def write_strings(path, texts: list[str]) -> None:
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_array("test.strings", texts)
    writer.add_uint32("test.after", 7)  # read correctly only if the array's end was found
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()


def read(path):
    with open(path, "rb") as file:
        return read_header(file, path.stat().st_size)


def texts_of(header, key="test.strings") -> list[str]:
    strings = header.metadata[key]
    assert isinstance(strings, StringArray)
    return [strings.item(header.raw, i).decode() for i in range(len(strings))]


def many_words(n: int) -> list[str]:
    return [f"word{i}" for i in range(n)]


@pytest.mark.parametrize(
    "odd",
    [
        [],  # the fast path
        ["", "x"],  # an empty text: the guess cannot be proven, the slow walk reads it
        ["\x00lead"],  # a text that starts with NUL
        ["y" * 70_000],  # a text longer than 65,535 bytes
        ["\x00\x00\x00z"],  # NULs inside
    ],
)
def test_large_string_arrays_read_back_exactly(tmp_path, odd):
    texts = many_words(SMALL_ARRAY + 10)
    texts[100:100] = odd
    write_strings(tmp_path / "s.gguf", texts)
    header = read(tmp_path / "s.gguf")
    assert texts_of(header) == texts
    assert header.metadata["test.after"] == 7


def test_a_duplicate_is_found_exactly_and_near_misses_are_not_duplicates(tmp_path):
    # same length and same first, middle and last 8 bytes: only the bytes between differ
    near = [f"AAAAAAAA{c}BBBBBBBBB{d}CCCCCCCC" for c in "pq" for d in "rs"]
    texts = many_words(SMALL_ARRAY + 10) + near
    write_strings(tmp_path / "s.gguf", texts)
    header = read(tmp_path / "s.gguf")
    assert find_duplicate(header.raw, header.metadata["test.strings"]) is None

    texts[-1] = texts[5]  # a real duplicate, far apart
    write_strings(tmp_path / "d.gguf", texts)
    header = read(tmp_path / "d.gguf")
    assert find_duplicate(header.raw, header.metadata["test.strings"]) == (5, len(texts) - 1)


def test_short_texts_that_differ_only_after_their_end_are_still_equal(tmp_path):
    # texts shorter than 8 bytes: the bytes after them (the next length) must not count
    texts = [*many_words(SMALL_ARRAY + 10), "ab", "a" * 300, "ab", "b" * 9]
    write_strings(tmp_path / "s.gguf", texts)
    header = read(tmp_path / "s.gguf")
    first = len(texts) - 4
    assert find_duplicate(header.raw, header.metadata["test.strings"]) == (first, first + 2)


def test_a_file_cut_inside_its_header_is_refused_with_the_offset(tmp_path):
    write_strings(tmp_path / "s.gguf", many_words(SMALL_ARRAY + 10))
    data = (tmp_path / "s.gguf").read_bytes()
    (tmp_path / "cut.gguf").write_bytes(data[: len(data) * 3 // 4])
    with pytest.raises(GGUFFormatError, match="past the end of the"):
        read(tmp_path / "cut.gguf")


def test_ggml_type_sizes_agree_with_the_gguf_package():
    theirs = {int(k): v for k, v in gguf.GGML_QUANT_SIZES.items()}
    assert {k: theirs[k] for k in GGML_TYPE_SIZES} == GGML_TYPE_SIZES


def test_numeric_arrays_are_not_copied_but_located(tmp_path):
    writer = gguf.GGUFWriter(tmp_path / "n.gguf", "llama")
    writer.add_array("test.numbers", list(range(SMALL_ARRAY + 1)))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    header = read(tmp_path / "n.gguf")
    ref = header.metadata["test.numbers"]
    values = np.frombuffer(header.raw, dtype="<i4", count=ref.count, offset=ref.offset)
    assert values[-1] == SMALL_ARRAY and ref.count == SMALL_ARRAY + 1


def test_random_damage_to_a_header_is_a_model_file_error_or_harmless(tmp_path):
    """Bytes of a good file's header overwritten at random (a fixed seed): the check either
    passes or raises ModelFileError, never another exception."""
    import random

    from gguf_malformed import write_model

    from baco_local.backend.file_check import _check
    from baco_local.errors import ModelFileError

    good = write_model(tmp_path / "good.gguf").read_bytes()
    rng = random.Random(7)
    path = tmp_path / "damaged.gguf"
    outcomes = {"passed": 0, "refused": 0}
    for _ in range(300):
        data = bytearray(good)
        for _ in range(rng.choice((1, 2, 4))):
            at, bits = rng.randrange(4, 20_000), rng.choice((8, 20, 40, 64))
            data[at : at + 8] = rng.randrange(1 << bits).to_bytes(8, "little")
        path.write_bytes(bytes(data))
        try:
            _check(path)
            outcomes["passed"] += 1
        except ModelFileError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 100 and outcomes["passed"] > 10  # both paths were taken

"""The in-context preamble's cache on disk: reused by the next process, never changing answers."""

import pytest

from baco_local import Pair
from baco_local.core.routers import ALIGNED


def answer(pair, seed=3):
    result = pair.generate("The cat", seed=seed, max_tokens=16)
    return [(t.id, t.source) for t in result.tokens]


def cache_files(home):
    return sorted((home / "cache" / "prompt-cache").glob("*.state"))


def test_preamble_is_saved_then_loaded_by_the_next_pair_with_identical_answers(tiny, fresh_home):
    with Pair.load(base=tiny.base, n_ctx=2048, prompt_cache=False) as pair:
        uncached = answer(pair)
    assert cache_files(fresh_home) == []
    with Pair.load(base=tiny.base, n_ctx=2048) as pair:
        first = answer(pair)
        assert pair.loaded._stores[ALIGNED].loads == 0
    assert len(cache_files(fresh_home)) == 1
    with Pair.load(base=tiny.base, n_ctx=2048) as pair:
        second = answer(pair)
        assert pair.loaded._stores[ALIGNED].loads == 1
    assert uncached == first == second


def test_a_broken_cache_file_is_replaced_and_changes_nothing(tiny, fresh_home):
    with Pair.load(base=tiny.base, n_ctx=2048) as pair:
        expected = answer(pair)
    (saved,) = cache_files(fresh_home)
    saved.write_bytes(b"not a llama.cpp state file")
    with Pair.load(base=tiny.base, n_ctx=2048) as pair:
        assert answer(pair) == expected
        assert pair.loaded._stores[ALIGNED].loads == 0
    (again,) = cache_files(fresh_home)
    assert again.read_bytes() != b"not a llama.cpp state file"
    assert not list(again.parent.glob(".*.tmp"))  # nothing half-written left behind


def test_pairs_without_a_preamble_keep_no_cache(tiny, fresh_home):
    with Pair.load(base=tiny.base, aligned=tiny.aligned, n_ctx=512) as pair:
        answer(pair)
        assert pair.loaded._stores == {}
    assert cache_files(fresh_home) == []


@pytest.mark.gemma
def test_gemma_preamble_cache_gives_the_same_answer(gemma_path, fresh_home):
    outputs = []
    for _ in range(2):
        with Pair.load(base=gemma_path, n_ctx=2048) as pair:
            result = pair.generate("Name a colour.", seed=5, max_tokens=12)
            outputs.append([t.id for t in result.tokens])
            loads = pair.loaded._stores[ALIGNED].loads
    assert loads == 1 and outputs[0] == outputs[1]


def test_a_failed_load_after_another_prompt_keeps_nothing_stale(tiny, fresh_home):
    with Pair.load(base=tiny.base, n_ctx=2048) as pair:
        expected = answer(pair)
    (saved,) = cache_files(fresh_home)
    with Pair.load(base=tiny.base, n_ctx=2048) as pair:
        # a raw answer leaves a short shared prefix (BOS) in the aligned stream
        pair.generate("The cat", raw=True, seed=1, max_tokens=4)
        saved.write_bytes(b"broken")
        assert answer(pair) == expected

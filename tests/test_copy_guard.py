"""The in-context partner may not copy spans of its preamble's example answers."""

from __future__ import annotations

import pytest

from baco_local import Pair
from baco_local.core.copy_guard import CopyGuard
from baco_local.pairs.prompt_formats import IN_CONTEXT_PREAMBLE, NAMED_FORMATS, example_answers


def test_only_the_token_that_completes_a_copied_span_is_banned():
    guard = CopyGuard([[1, 2, 3, 4, 5, 6, 7]], span=4)
    assert guard.banned([9, 1, 2, 3]) == {4}
    assert guard.banned([2, 3, 4]) == {5}
    assert guard.banned([1, 2]) == set()  # too short to complete a span
    assert guard.banned([3, 2, 1]) == set()
    with pytest.raises(ValueError):
        CopyGuard([[1, 2]], span=1)


def test_the_in_context_format_keeps_its_example_answers_out():
    answers = example_answers(IN_CONTEXT_PREAMBLE)
    assert len(answers) == 4 and answers[0].startswith("Here are three ideas")
    assert NAMED_FORMATS["in-context"].keep_out == answers
    assert not NAMED_FORMATS["transcript"].keep_out


@pytest.mark.parametrize("n", [1, 3])
def test_an_answer_cannot_run_a_copied_span_to_its_end(tiny, n):
    kw = dict(router="aligned", temperature=0, seed=1, max_tokens=16, lead=0)
    with Pair.load(base=tiny.base, n_ctx=2048) as pair:  # base + in-context partner
        assert "aligned" in pair.loaded.copy_guards
        pair.loaded.copy_guards.pop("aligned")
        free = pair.brainstorm("Tell me about the sea", n=n, **kw)[0]
        tokens = [t.id for t in free.tokens]
        # pretend the preamble's example answer was exactly this greedy answer
        pair.loaded.copy_guards["aligned"] = CopyGuard([tokens], span=6)
        guarded = pair.brainstorm("Tell me about the sea", n=n, **kw)[0]
    again = [t.id for t in guarded.tokens]
    assert again[:5] == tokens[:5]  # shorter echoes stay possible
    assert again[5] != tokens[5]  # the sixth token would have completed the copy

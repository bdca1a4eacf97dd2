"""Speculative collaboration's numeric core, on four-token distributions worked out by hand."""

import numpy as np
import pytest

from baco_local.core.distribution import make_dist, pick, point
from baco_local.core.drawing import position_draws
from baco_local.core.speculative import (
    credit_decision,
    keep_or_replace,
    residual_dist,
    step_target,
)

# tokens 0 and 1 go on a word; 2 and 3 start one
STARTS = {0: False, 1: False, 2: True, 3: True}.__getitem__


def as_dict(dist):
    return {int(t): round(float(p), 10) for t, p in zip(dist.ids, dist.probs, strict=True)}


def test_a_dist_is_normalised_ordered_most_likely_first_and_drops_zeros():
    dist = make_dist([3, 0, 2, 1], [1.0, 2.0, 0.0, 2.0])
    assert list(dist.ids) == [0, 1, 3]  # ties by lower id
    assert np.allclose(dist.probs, [0.4, 0.4, 0.2])
    assert dist.prob(2) == 0.0 and dist.prob(3) == pytest.approx(0.2)


def test_pick_walks_the_cumulative_probabilities():
    dist = make_dist([0, 1, 2], [0.5, 0.3, 0.2])
    assert [pick(dist, u) for u in (0.0, 0.49, 0.5, 0.79, 0.8, 0.999)] == [0, 0, 1, 1, 2, 2]


def test_a_draft_more_likely_under_the_target_is_always_kept():
    target = make_dist([0, 1, 2], [0.5, 0.3, 0.2])
    draft = make_dist([0, 1, 2, 3], [0.25] * 4)
    assert keep_or_replace(target, draft, 0, u_keep=0.999, u_residual=0.0) == (0, True)


def test_a_draft_is_kept_with_probability_target_over_draft():
    target = make_dist([0, 1, 2], [0.5, 0.3, 0.2])
    draft = make_dist([0, 1, 2, 3], [0.25] * 4)
    # token 2: p / q = 0.2 / 0.25 = 0.8
    assert keep_or_replace(target, draft, 2, 0.79, 0.0) == (2, True)
    assert keep_or_replace(target, draft, 2, 0.81, 0.0)[1] is False


def test_a_replaced_draft_comes_from_the_normalised_residual():
    target = make_dist([0, 1, 2], [0.5, 0.3, 0.2])
    draft = make_dist([0, 1, 2, 3], [0.25] * 4)
    # max(0, p - q) = [0.25, 0.05, 0, 0] -> [5/6, 1/6]
    assert as_dict(residual_dist(target, draft)) == {0: round(5 / 6, 10), 1: round(1 / 6, 10)}
    assert keep_or_replace(target, draft, 3, 0.0, 0.5) == (0, False)  # p(3) = 0: never kept
    assert keep_or_replace(target, draft, 3, 0.0, 0.9) == (1, False)


def test_the_result_follows_the_target_over_every_draw():
    """Integrate over the draft and both uniforms on a fine grid: exactly the target."""
    target = make_dist([0, 1, 2], [0.5, 0.3, 0.2])
    draft = make_dist([0, 1, 2, 3], [0.1, 0.2, 0.3, 0.4])
    grid = (np.arange(400) + 0.5) / 400
    counts = np.zeros(4)
    for token, q in zip(draft.ids, draft.probs, strict=True):
        for u_keep in grid:
            kept = keep_or_replace(target, draft, int(token), u_keep, 0.0)
            if kept[1]:
                counts[token] += q / len(grid)
            else:
                for u in grid[::8]:
                    counts[keep_or_replace(target, draft, int(token), u_keep, u)[0]] += (
                        q / len(grid) / len(grid[::8])
                    )
    assert np.allclose(counts, [0.5, 0.3, 0.2, 0.0], atol=0.01)


def test_greedy_keeps_an_equal_draft_and_replaces_another_by_the_target():
    assert keep_or_replace(point(2), point(2), 2, 0.5, 0.5) == (2, True)
    assert keep_or_replace(point(2), point(1), 1, 0.0, 0.0) == (2, False)


def test_the_step_target_is_the_owner_when_the_router_keeps_it():
    owner = make_dist([0, 2], [0.6, 0.4])
    decision = make_dist([3], [1.0])
    assert as_dict(step_target(owner, decision, True, STARTS).dist) == {0: 0.6, 2: 0.4}
    first = step_target(None, decision, False, STARTS)
    assert as_dict(first.dist) == {3: 1.0} and list(first.decision_share) == [1.0]


def test_the_step_target_of_a_switch_worked_by_hand():
    # owner: 0 (goes on) 0.5, 2 (starts) 0.3, 3 (starts) 0.2; owner starts a word w.p. 0.5
    # choice: 1 (goes on) 0.1, 2 (starts) 0.6, 3 (starts) 0.3; goes on w.p. 0.1
    owner = make_dist([0, 2, 3], [0.5, 0.3, 0.2])
    decision = make_dist([1, 2, 3], [0.1, 0.6, 0.3])
    target = step_target(owner, decision, False, STARTS)
    # T(0) = 0.5 (owner goes on); T(2) = 0.3 * 0.1 + 0.5 * 0.6 = 0.33; T(3) = 0.02 + 0.15
    assert as_dict(target.dist) == {0: 0.5, 2: 0.33, 3: 0.17}
    shares = dict(zip(target.dist.ids.tolist(), target.decision_share.tolist(), strict=True))
    assert shares[0] == 0.0
    assert shares[2] == pytest.approx(0.30 / 0.33)
    assert shares[3] == pytest.approx(0.15 / 0.17)
    assert credit_decision(target, 2, 0.90) and not credit_decision(target, 2, 0.91)
    assert not credit_decision(target, 0, 0.0)


def test_step_target_does_not_modify_its_inputs():
    owner = make_dist([0, 2, 3], [0.5, 0.3, 0.2])
    decision = make_dist([1, 2, 3], [0.1, 0.6, 0.3])
    before = [a.copy() for a in (*owner, *decision)]
    step_target(owner, decision, False, STARTS)
    assert all(np.array_equal(a, b) for a, b in zip(before, (*owner, *decision), strict=True))


def test_position_draws_depend_on_seed_and_position_only():
    assert position_draws(7, 3) == position_draws(7, 3)
    assert position_draws(7, 3) != position_draws(7, 4)
    assert position_draws(7, 3) != position_draws(8, 3)
    assert all(0 <= u < 1 for u in position_draws(7, 3))

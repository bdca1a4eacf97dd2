"""Routers on hand-made signals: each decision worked out from the router's rule."""

import math

import pytest

from baco_local.core.routers import ALIGNED, BASE, MIX, ROUTERS, Signals, get_router
from baco_local.core.token_roles import Role
from baco_local.errors import SettingsError


def signals(top1=0.5, entropy=1.0, role=Role.CONTENT, uniform=0.5):
    return Signals(top1, entropy, role, uniform)


@pytest.mark.parametrize(
    ("router", "gamma", "sig", "expected"),
    [
        ("aligned", None, signals(top1=0.01), ALIGNED),
        ("base", None, signals(top1=0.99), BASE),
        # p: base when the base top-1 probability is below gamma
        ("p", 0.5, signals(top1=0.3), BASE),
        ("p", 0.5, signals(top1=0.7), ALIGNED),
        ("p", 0.5, signals(top1=0.5), ALIGNED),  # not strictly below
        # h: base when the base entropy is above gamma
        ("h", 1.5, signals(entropy=2.0), BASE),
        ("h", 1.5, signals(entropy=1.0), ALIGNED),
        # punc: punctuation to aligned, all else to base
        ("punc", None, signals(role=Role.PUNCT), ALIGNED),
        ("punc", None, signals(role=Role.FUNCTION), BASE),
        ("punc", None, signals(role=Role.CONTENT), BASE),
        # fc: function words and punctuation to aligned, content to base
        ("fc", None, signals(role=Role.FUNCTION), ALIGNED),
        ("fc", None, signals(role=Role.PUNCT), ALIGNED),
        ("fc", None, signals(role=Role.CONTENT), BASE),
        # combined: the content rule first, then the logit rule
        ("p-punc", 0.5, signals(top1=0.1, role=Role.PUNCT), ALIGNED),
        ("p-punc", 0.5, signals(top1=0.1, role=Role.FUNCTION), BASE),
        ("p-punc", 0.5, signals(top1=0.9, role=Role.CONTENT), ALIGNED),
        ("h-punc", 1.5, signals(entropy=3.0, role=Role.PUNCT), ALIGNED),
        ("h-punc", 1.5, signals(entropy=3.0, role=Role.CONTENT), BASE),
        ("p-fc", 0.5, signals(top1=0.1, role=Role.FUNCTION), ALIGNED),
        ("p-fc", 0.5, signals(top1=0.1, role=Role.CONTENT), BASE),
        ("p-fc", 0.5, signals(top1=0.6, role=Role.CONTENT), ALIGNED),
        # random: base when the uniform draw is below gamma
        ("random", 0.3, signals(uniform=0.29), BASE),
        ("random", 0.3, signals(uniform=0.31), ALIGNED),
        # nudging: the aligned model supplies the word when the base is unsure
        ("nudging", 0.3, signals(top1=0.2), ALIGNED),
        ("nudging", 0.3, signals(top1=0.4), BASE),
        ("ensemble", 0.5, signals(), MIX),
    ],
)
def test_decisions_follow_each_rule(router, gamma, sig, expected):
    assert get_router(router).decide(sig, gamma) == expected


def test_every_router_is_listed_with_a_description():
    for name, spec in ROUTERS.items():
        assert spec.name == name and spec.description
        if spec.has_gamma:
            low, high = spec.gamma_range
            assert low <= spec.gamma_default <= high and spec.gamma_meaning


def test_decide_has_no_side_effects():
    spec = get_router("p-punc")
    sig = signals(top1=0.2)
    assert {spec.decide(sig, 0.5) for _ in range(5)} == {BASE}
    assert sig == signals(top1=0.2)


def test_raising_gamma_sends_more_to_base_for_p_and_less_for_h():
    tops = [i / 20 for i in range(20)]
    p = get_router("p")
    assert sum(p.decide(signals(top1=t), 0.3) == BASE for t in tops) < sum(
        p.decide(signals(top1=t), 0.7) == BASE for t in tops
    )
    h = get_router("h")
    entropies = [i / 4 for i in range(20)]
    assert sum(h.decide(signals(entropy=e), 1.0) == BASE for e in entropies) > sum(
        h.decide(signals(entropy=e), 3.0) == BASE for e in entropies
    )


def test_unknown_router_suggests_the_nearest_names():
    with pytest.raises(SettingsError) as error:
        get_router("p_punc")
    assert "'p-punc'" in str(error.value) and "baco routers" in str(error.value)


@pytest.mark.parametrize("gamma", [-0.1, 1.5, math.nan, math.inf])
def test_gamma_out_of_range_names_the_range(gamma):
    with pytest.raises(SettingsError) as error:
        get_router("p").check_gamma(gamma)
    assert "[0, 1]" in str(error.value)


def test_gamma_for_a_router_without_a_dial_is_an_error():
    with pytest.raises(SettingsError, match="has no gamma"):
        get_router("punc").check_gamma(0.5)
    assert get_router("punc").check_gamma(None) is None
    assert get_router("h").check_gamma(None) == 1.5

"""Settings validate once and say what range is valid."""

import pytest

from baco_local.core.settings import GenerationSettings, LoadSettings
from baco_local.errors import SettingsError


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("temperature", -1, "[0, 5]"),
        ("top_p", 0, "(0, 1]"),
        ("min_p", 1.0, "[0, 1)"),
        ("top_k", -3, "top-k off"),
        ("max_tokens", 0, "at least 1"),
        ("seed", -5, "whole number"),
        ("router", "nope", "baco routers"),
        ("gamma", 2.0, "[0, 1]"),
    ],
)
def test_bad_generation_settings_name_the_fix(field, value, needle):
    with pytest.raises(SettingsError) as error:
        GenerationSettings(**{field: value})
    assert needle in str(error.value)


def test_router_default_gamma_and_changes_are_validated():
    s = GenerationSettings(router="h")
    assert s.gamma == 1.5
    assert s.with_changes(router="p").gamma == 0.5  # a new router brings its own default
    assert s.with_changes(gamma=3.0).gamma == 3.0
    with pytest.raises(SettingsError):
        s.with_changes(router="p", gamma=3.0)
    with pytest.raises(AttributeError):
        s.gamma = 1.0  # frozen


@pytest.mark.parametrize(
    ("field", "value"), [("n_ctx", 0), ("n_threads", 0), ("n_batch", 0), ("n_gpu_layers", -2)]
)
def test_bad_load_settings(field, value):
    with pytest.raises(SettingsError):
        LoadSettings(**{field: value})

"""Where baco keeps things: cache (downloaded models), config (user catalog), data (sessions).

Paths come from functions, never module constants, so that nothing happens at import
time and tests can move everything with one environment variable: `BACO_HOME` puts
cache/, config/ and data/ under one folder. Otherwise platformdirs picks each OS's
usual place (for example ~/.cache/baco-local on Linux).
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "baco-local"
HOME_ENV = "BACO_HOME"


def _home() -> Path | None:
    value = os.environ.get(HOME_ENV)
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """Downloaded and assembled model files, prompt caches."""
    home = _home()
    if home is not None:
        return home / "cache"
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def config_dir() -> Path:
    """The user catalog (models.toml) and settings."""
    home = _home()
    if home is not None:
        return home / "config"
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def data_dir() -> Path:
    """Sessions, votes, evaluation results."""
    home = _home()
    if home is not None:
        return home / "data"
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))

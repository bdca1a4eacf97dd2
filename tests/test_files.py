"""Files written whole: the temporary file's private mode does not leak into the result."""

from __future__ import annotations

import os
import stat

from baco_local.files import write_atomic


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_file_gets_the_mode_of_any_new_file_here(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")  # created the ordinary way, under this process's umask
    written = tmp_path / "report.md"
    write_atomic(written, "# report\n")
    assert written.read_text() == "# report\n"
    assert mode(written) == mode(plain)


def test_rewriting_a_file_keeps_its_mode(tmp_path):
    private = tmp_path / "private.json"
    private.write_text("{}")
    private.chmod(0o600)
    write_atomic(private, '{"a": 1}')
    assert mode(private) == 0o600 and private.read_text() == '{"a": 1}'
    shared = tmp_path / "shared.json"
    shared.write_text("{}")
    shared.chmod(0o644)
    write_atomic(shared, b"[]")
    assert mode(shared) == 0o644

"""Editing the user catalog (config_dir()/models.toml): `baco models add` and `rm`.

A pair is checked before it is saved: hub files are downloaded, both vocabularies are
compared (vocabulary-only loads, no weights) and the aligned model must have a chat
template or a named format. The file is rewritten whole through a temporary file, so
it is never left half-written; comments in it are not kept.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from ..errors import BacoError, ModelFileError, PromptError, unknown_name_error
from ..files import write_atomic
from ..pairs.loading import IN_CONTEXT
from .catalog_file import (
    PAIR_NAME,
    CatalogData,
    CatalogError,
    parse_pair,
    read_toml,
    user_catalog_path,
)
from .downloads import download_hub_file
from .storage import Progress

_HUB_REF = re.compile(
    r"^(?P<repo>[\w.-]+/[\w.-]+?)(?:@(?P<revision>[\w.-]+))?/(?P<file>[^@]+\.gguf)$"
)
_HEADER = (
    "# baco-local user catalog: pairs added with `baco models add`, or written by hand.\n"
    "# The fields are those of baco-local's own models.toml. `baco models add` and\n"
    "# `baco models rm` rewrite this file (comments are not kept).\n"
)


def parse_model_ref(text: str, role: str) -> dict:
    """A local path or a hub reference (org/repo/file.gguf, hf://org/repo[@rev]/file.gguf)
    as catalog entry fields."""
    text = str(text).strip()
    path = Path(text).expanduser()
    is_hub = text.startswith("hf://")
    if not is_hub and path.exists():
        if not path.is_file():
            raise ModelFileError(f"{path} is not a file.", f"give the {role} model's .gguf file")
        return {"path": str(path.resolve())}
    found = _HUB_REF.match(text.removeprefix("hf://"))
    if found and (is_hub or not text.startswith((".", "/", "~"))):
        return {k: v for k, v in found.groupdict().items() if v}
    raise ModelFileError(
        f"The {role} model {text!r} is neither a file here nor a hub reference.",
        "give a local .gguf path, or a hub file as ORG/REPO/FILE.gguf (or hf://ORG/REPO/FILE.gguf)",
    )


def add_pair(
    name: str,
    base: str,
    aligned: str,
    *,
    description: str | None,
    router: str | None,
    gamma: float | None,
    base_format: str | None,
    aligned_format: str | None,
    check: bool,
    progress: Progress | None,
) -> None:
    if not PAIR_NAME.match(name):
        raise BacoError(
            f"{name!r} cannot be a pair name.", "use letters, digits, '.', '_', '+' and '-'"
        )
    base_fields = parse_model_ref(base, "base")
    in_context = str(aligned).strip() == IN_CONTEXT
    aligned_fields = None if in_context else parse_model_ref(aligned, "aligned")
    for fields, fmt in ((base_fields, base_format), (aligned_fields, aligned_format)):
        if fields is not None and fmt:
            fields["format"] = fmt
    table = {"description": description or _describe(base_fields, aligned_fields)}
    if router:
        table["router"] = router
    if gamma is not None:
        table["gamma"] = gamma
    table["base"] = base_fields
    table["aligned"] = IN_CONTEXT if in_context else aligned_fields
    data, source = read_toml(user_catalog_path(), required=False)
    parse_pair(name, table, source)  # the same checks as reading the file back
    if check and _check_pair(name, base_fields, aligned_fields, progress):
        table["cross_tokenizer"] = True
    data.setdefault("pairs", {})[name] = table
    _write(data)


def _describe(base: dict, aligned: dict | None) -> str:
    def short(fields: dict) -> str:
        return Path(fields.get("path") or fields["file"]).name.removesuffix(".gguf")

    partner = "in-context aligned" if aligned is None else short(aligned)
    return f"{short(base)} + {partner} (added by you)"


def _check_pair(name, base: dict, aligned: dict | None, progress) -> bool:
    """Fetch hub files, read both vocabularies, check the aligned format; records the
    exact sizes fetched. True when the vocabularies differ (a word-level pair)."""
    from ..backend import Model, check_writes_text
    from ..pairs.loading import vocabulary_difference

    paths = [_fetch(name, fields, progress) for fields in (base, aligned) if fields is not None]
    models = []
    try:
        for path in paths:
            check_writes_text(path)
            models.append(Model(path, vocab_only=True))
        if len(models) < 2:
            return False
        if "format" not in aligned and models[1].chat_template() is None:
            raise PromptError(
                f"The aligned model {paths[1].name} has no chat template, so baco cannot "
                "tell how to format a conversation for it.",
                "name its format with --aligned-format (chatml, gemma, llama3, tulu, "
                "transcript, or a .jinja file)",
            )
        return vocabulary_difference(models[0], models[1]) is not None
    finally:
        for model in models:
            model.close()


def _fetch(name: str, fields: dict, progress) -> Path:
    if "path" in fields:
        return Path(fields["path"])
    path = download_hub_file(
        fields["repo"],
        fields["file"],
        revision=fields.get("revision"),
        progress=progress,
        retry_command=f"baco models add {name} ...",
    )
    fields["size_bytes"] = path.stat().st_size
    return path


def remove_pair(name: str, catalog: CatalogData) -> None:
    pairs = catalog.user_raw.get("pairs", {})
    if name not in pairs:
        if name in catalog.pairs:
            raise CatalogError(
                f"{name!r} is a built-in pair; only pairs you added can be removed.",
                f"to free its disk space, run `baco models rm {name} --files`",
            )
        raise unknown_name_error("pair", name, catalog.pairs, "baco models list")
    data = dict(catalog.user_raw)
    data["pairs"] = {key: value for key, value in pairs.items() if key != name}
    if data.get("default") == name:
        del data["default"]
    _write(data)


# --- writing TOML -----------------------------------------------------------------


def write_user_catalog(data: dict) -> None:
    """Replace the user catalog with `data` (parsed TOML, as CatalogData.user_raw)."""
    _write(data)


def _write(data: dict) -> None:
    try:
        text = toml_document(data)
    except (TypeError, ValueError) as error:
        raise CatalogError(
            f"Cannot rewrite {user_catalog_path()}: {error}.",
            "edit the file by hand (it uses a TOML feature `baco models` does not write)",
        ) from None
    write_atomic(user_catalog_path(), text)


def toml_document(data: dict) -> str:
    """TOML for nested tables of strings, numbers and booleans (what catalogs hold)."""
    lines = [_HEADER.rstrip("\n")]
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    if scalars:
        lines.append("")
    lines += [f"{_key(k)} = {_value(v)}" for k, v in scalars.items()]
    for key, value in data.items():
        if isinstance(value, dict):
            _table(lines, [key], value)
    return "\n".join(lines) + "\n"


def _table(lines: list[str], path: list[str], table: dict) -> None:
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
    if scalars or not table:
        lines += ["", f"[{'.'.join(_key(part) for part in path)}]"]
        lines += [f"{_key(k)} = {_value(v)}" for k, v in scalars.items()]
    for key, value in table.items():
        if isinstance(value, dict):
            _table(lines, [*path, key], value)


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _string(key)


def _value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write the number {value}")
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    raise TypeError(f"cannot write a {type(value).__name__} value")


def _string(text: str) -> str:
    # JSON string escapes are TOML basic-string escapes, except that TOML also forbids DEL
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007F")

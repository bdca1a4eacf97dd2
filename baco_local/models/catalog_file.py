"""Reading models.toml files: TOML in, checked pair fields out, errors with file and line.

TOML parsers report positions only for syntax errors, so for a missing or wrong field
this module finds the line itself: the table header or the `key =` line of the field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from ..errors import BacoError, nearest_names
from ..paths import config_dir

PAIR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
PAIR_FIELDS = (
    "description",
    "base",
    "aligned",
    "router",
    "gamma",
    "lead",
    "sampler",
    "temperature",
    "demo_base",
    "cross_tokenizer",
)
ENTRY_FIELDS = (
    "repo",
    "file",
    "path",
    "package",
    "revision",
    "size_bytes",
    "size_mb",
    "sha256",
    "license",
    "format",
    "confirmed",
)
# A sentence embedder: a packaged sentence-transformers folder and/or a hub GGUF.
EMBEDDER_FIELDS = ("description", "model", "package", "folder", "repo", "file", "revision")
EMBEDDER_FIELDS += ("size_bytes", "size_mb", "sha256", "license")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_FORMAT_HINT = "template, transcript, chatml, gemma, llama3, tulu, in-context, or a .jinja file"


def builtin_catalog_path() -> Path:
    """models.toml shipped with baco-local (inside the package, or at the project top)."""
    package = Path(__file__).resolve().parent.parent  # baco_local/
    packaged = package / "models.toml"
    return packaged if packaged.is_file() else package.parent / "models.toml"


def user_catalog_path() -> Path:
    return config_dir() / "models.toml"


class CatalogError(BacoError):
    """A models.toml that cannot be read or has a wrong field."""


@dataclass
class CatalogData:
    pairs: dict = field(default_factory=dict)  # name -> CatalogPair
    default: str = ""
    embedders: dict = field(default_factory=dict)  # name -> checked fields (parse_embedder)
    user_raw: dict = field(default_factory=dict)  # the user file as parsed (for editing)


@dataclass(frozen=True)
class _Source:
    path: Path
    text: str

    def error(self, message: str, hint: str, pair=None, role=None, key=None) -> CatalogError:
        line = find_line(self.text, pair, role, key) if pair else _top_line(self.text, key)
        where = f"{self.path}, line {line}" if line else str(self.path)
        return CatalogError(f"{where}: {message}", hint)


def read_toml(path: Path, *, required: bool) -> tuple[dict, _Source]:
    """Parse one catalog file; a missing optional file is an empty catalog."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if not required:
            return {}, _Source(path, "")
        raise CatalogError(
            f"baco-local's model catalog is missing: {path}", "reinstall baco-local"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise CatalogError(
            f"Cannot read the model catalog {path}: {error}.", "check the file"
        ) from None
    try:
        return tomllib.loads(text), _Source(path, text)
    except tomllib.TOMLDecodeError as error:
        raise CatalogError(
            f"{path} is not valid TOML: {error}{_quote_line(text, str(error))}",
            "fix that line (strings need double quotes, tables look like [pairs.NAME.base])",
        ) from None


def _quote_line(text: str, message: str) -> str:
    found = re.search(r"line (\d+)", message)
    if not found:
        return ""
    lines = text.splitlines()
    number = int(found.group(1))
    return f"\n    {lines[number - 1].strip()}" if 0 < number <= len(lines) else ""


def read_catalog(builtin: Path, user: Path, build: Callable[[dict, str], object]) -> CatalogData:
    """The built-in catalog merged with the user's (user fields win, pair by pair)."""
    builtin_data, builtin_source = read_toml(builtin, required=True)
    user_data, user_source = read_toml(user, required=False)
    builtin_raw = _pairs_table(builtin_data, builtin_source)
    user_raw = _pairs_table(user_data, user_source)
    catalog = CatalogData(user_raw=user_data)
    for name, raw in builtin_raw.items():
        catalog.pairs[name] = build(parse_pair(name, raw, builtin_source), "builtin")
    for name, raw in user_raw.items():
        merged = {**builtin_raw.get(name, {}), **raw} if isinstance(raw, dict) else raw
        catalog.pairs[name] = build(parse_pair(name, merged, user_source), "user")
    for data, source in ((builtin_data, builtin_source), (user_data, user_source)):
        for name, raw in _embedders_table(data, source).items():
            catalog.embedders[name] = parse_embedder(name, raw, source)
    catalog.default = _default(user_data, user_source) or _default(builtin_data, builtin_source)
    if catalog.default not in catalog.pairs:
        source = user_source if "default" in user_data else builtin_source
        raise source.error(
            f"the default pair {catalog.default!r} is not in the catalog.",
            f"set default to one of: {', '.join(catalog.pairs)}",
            key="default",
        )
    return catalog


def _pairs_table(data: dict, source: _Source) -> dict:
    for key in data:
        if key not in ("default", "pairs", "embedders"):
            raise _unknown_key(source, key, ("default", "pairs", "embedders"), None, None)
    pairs = data.get("pairs", {})
    if not isinstance(pairs, dict):
        raise source.error("'pairs' must be a table.", "write pairs as [pairs.NAME]", key="pairs")
    for name in pairs:
        if not PAIR_NAME.match(name):
            raise source.error(
                f"pair name {name!r} has characters baco cannot use in commands.",
                "use letters, digits, '.', '_', '+' and '-' (quote names with dots: "
                '[pairs."qwen2.5-1.5b"])',
                pair=name,
            )
    return pairs


def _embedders_table(data: dict, source: _Source) -> dict:
    embedders = data.get("embedders", {})
    if not isinstance(embedders, dict) or not all(isinstance(v, dict) for v in embedders.values()):
        raise source.error(
            "'embedders' must hold tables.", "write embedders as [embedders.NAME]", key="embedders"
        )
    return embedders


def parse_embedder(name: str, raw: dict, source: _Source) -> dict:
    """Checked fields of one sentence embedder (models/embedders.py's CatalogEmbedder).

    It names a sentence-transformers folder in a registry package (package, folder),
    converted on first use, and/or a published GGUF on the hub (repo, file, ...).
    """
    for key in raw:
        if key not in EMBEDDER_FIELDS:
            raise _unknown_key(source, key, EMBEDDER_FIELDS, None, None)
    get = _Getter(source, raw, name, None, kind="embedder")
    package, folder = get("package", str), get("folder", str)
    repo, file = get("repo", str), get("file", str)
    if (package is None) != (folder is None) or (repo is None) != (file is None):
        both = "give package and folder, or repo and file"
        raise get.missing("folder" if package else "file", both)
    if package is None and repo is None:
        raise get.missing("repo", "name a packaged folder (package, folder) or a hub file")
    hub = None
    if repo is not None:
        fields = {k: raw[k] for k in ENTRY_FIELDS if k in raw and k != "package"}
        hub = parse_entry(name, "hub", fields, source)
    return {
        "name": name,
        "description": get("description", str, required=True),
        "model": get("model", str) or name,
        "package": package,
        "folder": folder,
        "hub": hub,
    }


def _default(data: dict, source: _Source) -> str | None:
    value = data.get("default")
    if value is not None and not isinstance(value, str):
        raise source.error(
            "'default' must be a pair name.", 'write default = "NAME"', key="default"
        )
    return value


def parse_pair(name: str, raw, source: _Source) -> dict:
    """Checked fields of one pair: CatalogPair's fields, entries as ModelEntry fields."""
    if not isinstance(raw, dict):
        raise source.error(f"pair {name!r} must be a table.", f"write [pairs.{name}]", pair=name)
    for key in raw:
        if key not in PAIR_FIELDS:
            raise _unknown_key(source, key, PAIR_FIELDS, name, None)
    get = _Getter(source, raw, name, None)
    aligned = raw.get("aligned")
    if aligned == "in-context":
        aligned_fields = None
    elif aligned is None or isinstance(aligned, dict):
        aligned_fields = parse_entry(name, "aligned", aligned, source)
    else:
        raise source.error(
            f"pair {name!r}: 'aligned' must be a table of model fields or \"in-context\".",
            'write aligned = "in-context" or an [pairs.NAME.aligned] table',
            pair=name,
            key="aligned",
        )
    router = _router(get("router", str) or "p-punc", source, name)
    return {
        "name": name,
        "description": get("description", str, required=True),
        "base": parse_entry(name, "base", raw.get("base"), source),
        "aligned": aligned_fields,
        "router": router,
        "gamma": _gamma(get, router),
        "lead": _lead(get),
        **_sampler(get),
        "demo_base": bool(get("demo_base", bool)),
        "cross_tokenizer": bool(get("cross_tokenizer", bool)),
    }


def parse_entry(pair: str, role: str, raw, source: _Source) -> dict:
    """Checked ModelEntry fields of one role."""
    if raw is None:
        raise source.error(
            f"pair {pair!r} has no {role!r} model.",
            f"add a [pairs.{pair}.{role}] table with repo and file (or path)",
            pair=pair,
        )
    if not isinstance(raw, dict):
        raise source.error(
            f"pair {pair!r}: {role!r} must be a table of model fields.",
            f"write [pairs.{pair}.{role}] with repo and file (or path)",
            pair=pair,
            key=role,
        )
    for key in raw:
        if key not in ENTRY_FIELDS:
            raise _unknown_key(source, key, ENTRY_FIELDS, pair, role)
    get = _Getter(source, raw, pair, role)
    repo, file, path = get("repo", str), get("file", str), get("path", str)
    package = get("package", str)
    if package is not None and (repo is not None or path is not None or file is None):
        raise get.wrong(
            "package", "a packaged model names package and file, and neither repo nor path"
        )
    if package is None and path is None and (repo is None or file is None):
        missing = "file" if repo else "repo"
        raise get.missing(missing, "name a hub file with repo and file, or a local file with path")
    if path is not None and repo is not None:
        raise get.wrong("path", "a model is either on the hub (repo, file) or local (path)")
    if path is not None:
        path = str(_local_path(path, source.path))
    size_bytes, size_mb = get("size_bytes", int), get("size_mb", float)
    if size_bytes is not None and size_mb is not None:
        raise get.wrong("size_mb", "give size_bytes (exact) or size_mb (approximate), not both")
    sha256 = get("sha256", str)
    if sha256 is not None and not _SHA256.match(sha256):
        raise get.wrong("sha256", "a sha256 is 64 hexadecimal characters")
    model_format = get("format", str)
    if model_format is not None and not _known_format(model_format):
        raise get.wrong("format", f"use one of: {_FORMAT_HINT}")
    confirmed = get("confirmed", bool)
    return {
        "repo": repo,
        "file": file,
        "path": path,
        "package": package,
        "size_bytes": size_bytes if size_mb is None else round(size_mb * 1_000_000),
        "sha256": sha256.lower() if sha256 else None,
        "license": get("license", str),
        "format": model_format,
        "revision": get("revision", str),
        "confirmed": True if confirmed is None else confirmed,
        "size_exact": size_mb is None,
    }


class _Getter:
    """Read one field of a table with its type checked; errors name file, line and field."""

    def __init__(self, source: _Source, raw: dict, pair: str, role: str | None, kind="pair"):
        self.source, self.raw, self.pair, self.role = source, raw, pair, role
        self.kind = kind

    def __call__(self, key: str, kind: type, required: bool = False):
        value = self.raw.get(key)
        if value is None:
            if required:
                raise self.missing(key, f"add {key} = ... to the table")
            return None
        if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value) or value < 0:
                raise self.wrong(key, "use a finite number, 0 or more")
            return float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.wrong(key, f"use {_KIND_NAMES[kind]}")
        if kind is int and value <= 0:
            raise self.wrong(key, "use a positive whole number")
        return value

    def _what(self) -> str:
        return f"{self.kind} {self.pair!r}" + (f", {self.role} model" if self.role else "")

    def missing(self, key: str, hint: str) -> CatalogError:
        return self.source.error(
            f"{self._what()}: missing field {key!r}.", hint, pair=self.pair, role=self.role
        )

    def wrong(self, key: str, hint: str) -> CatalogError:
        value = self.raw.get(key)
        return self.source.error(
            f"{self._what()}: field {key!r} has a wrong value ({value!r}).",
            hint,
            pair=self.pair,
            role=self.role,
            key=key,
        )


_KIND_NAMES = {
    str: 'a string in double quotes ("...")',
    int: "a whole number",
    bool: "true or false",
}


def _unknown_key(source: _Source, key: str, valid, pair, role) -> CatalogError:
    close = nearest_names(key, valid)
    guess = f" (did you mean {close[0]!r}?)" if close else ""
    where = f"pair {pair!r}" + (f", {role} model" if role else "") if pair else "the catalog"
    return source.error(
        f"{where}: unknown field {key!r}{guess}.",
        f"valid fields: {', '.join(valid)}",
        pair=pair,
        role=role,
        key=key,
    )


def _router(name: str, source: _Source, pair: str) -> str:
    from ..core.routers import ROUTERS

    if name not in ROUTERS:
        close = nearest_names(name, ROUTERS)
        guess = f" (did you mean {close[0]!r}?)" if close else ""
        raise source.error(
            f"pair {pair!r}: unknown router {name!r}{guess}.",
            f"valid routers: {', '.join(ROUTERS)} (see `baco routers`)",
            pair=pair,
            key="router",
        )
    return name


def _lead(get: _Getter) -> int | None:
    lead = 0 if get.raw.get("lead") == 0 else get("lead", int)
    if lead is not None and not 0 <= lead <= 1024:
        raise get.wrong("lead", "use a count of tokens from 0 to 1024, e.g. 3")
    return lead


def _sampler(get: _Getter) -> dict:
    """The recommended sampler (a name from core.sampler_presets) and temperature."""
    from ..core.sampler_presets import SAMPLER_PRESETS

    sampler, temperature = get("sampler", str), get("temperature", float)
    if sampler is not None and sampler not in SAMPLER_PRESETS:
        raise get.wrong("sampler", f"use one of: {', '.join(SAMPLER_PRESETS)}")
    if temperature is not None and not 0 < temperature <= 5:
        raise get.wrong("temperature", "use a temperature above 0 and at most 5, e.g. 1.0")
    return {"sampler": sampler, "temperature": temperature}


def _gamma(get: _Getter, router: str) -> float | None:
    from ..core.routers import ROUTERS

    gamma = get("gamma", float)
    try:
        ROUTERS[router].check_gamma(gamma)
    except BacoError as error:
        raise get.wrong("gamma", error.hint or error.message) from None
    return gamma


def _known_format(name: str) -> bool:
    from ..pairs.prompt_formats import NAMED_FORMATS

    return name == "template" or name in NAMED_FORMATS or name.endswith((".jinja", ".j2"))


def _local_path(value: str, catalog_file: Path) -> Path:
    """A local model path; relative paths are relative to the catalog file's folder."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else (catalog_file.parent / path).resolve()


# --- finding lines ------------------------------------------------------------------


def find_line(text: str, pair: str, role: str | None = None, key: str | None = None):
    """The 1-based line of [pairs.PAIR(.ROLE)] or of `KEY =` inside it; None if absent."""
    name = re.escape(pair)
    quoted = rf"(?:{name}|\"{name}\"|'{name}')"
    header = re.compile(rf"^\s*\[\s*pairs\s*\.\s*{quoted}\s*(?:\.\s*(\w+)\s*)?\]")
    table_line = role_line = None
    current = None  # "" inside [pairs.PAIR], the role inside [pairs.PAIR.ROLE]
    for number, line in enumerate(text.splitlines(), 1):
        found = header.match(line)
        if found:
            current = found.group(1) or ""
            table_line = table_line or number
            if role and current == role:
                role_line = number
            continue
        if line.lstrip().startswith("["):
            current = None
            continue
        line_key = line.split("=", 1)[0].strip().strip("\"'") if "=" in line else None
        if current is None or line_key is None:
            continue
        if key and line_key == key and current == (role or ""):
            return number
        if role and current == "" and line_key == role:
            role_line = role_line or number  # an inline table: base = { ... }
    return role_line or table_line


def _top_line(text: str, key: str | None):
    for number, line in enumerate(text.splitlines(), 1):
        if key and re.match(rf"^\s*{re.escape(key)}\s*=", line):
            return number
    return None

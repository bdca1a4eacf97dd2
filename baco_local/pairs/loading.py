"""A loaded base/aligned pair: two models (or one, shared), their formats, their streams.

Loading compares the two vocabularies: a pair that shares one collaborates token by
token; a pair whose vocabularies differ collaborates word by word, through text, and
says so in its label ("cross-tokenizer"). It picks each role's prompt format (never
silently: a model without a chat template needs a named format), and opens one stream
(context) per role. When both roles use the same file (the in-context aligned partner,
or the same path twice) the weights are loaded once and both roles share one context,
each with its own sequences, so a step decodes both in one batch
(`LoadSettings.one_context`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from ..backend import Model, Stream, check_writes_text, require_memory
from ..core.copy_guard import CopyGuard
from ..core.routers import ALIGNED, BASE
from ..core.settings import GenerationSettings, LoadSettings
from ..core.speculative import MAX_DRAFT_LENGTH
from ..core.token_roles import TokenRoles
from ..errors import ModelFileError, PromptError, SettingsError, VocabularyMismatchError
from .prompt_cache import PrefixStore
from .prompt_formats import (
    NAMED_FORMATS,
    PromptFormat,
    named_format,
    template_format,
)

IN_CONTEXT = "in-context"

# Extra tokens that only pad a vocabulary to a round size; a pair may differ in these.
_PADDING_PREFIXES = (b"[PAD", b"<pad", b"<|pad", b"<unused", b"<|extra", b"<|reserved", b"<extra")


class Prompt(NamedTuple):
    """A role's prompt: its tokens, and how many of them are a fixed preamble."""

    tokens: list[int]
    fixed: int = 0


@dataclass(frozen=True)
class PairSpec:
    """What to load. aligned may be the string "in-context": the base weights play the
    aligned role too, after an alignment preamble."""

    base: str | os.PathLike
    aligned: str | os.PathLike
    base_format: str | None = None  # None: "transcript"
    aligned_format: str | None = None  # None: the GGUF's chat template (an error if none)
    name: str | None = None  # catalog name, shown in labels
    router: str | None = None  # the catalog's recommended router, gamma and lead
    gamma: float | None = None
    lead: int | None = None
    sampler: str | None = None  # and sampler (core.sampler_presets) at a temperature
    temperature: float | None = None

    @property
    def in_context(self) -> bool:
        return str(self.aligned) == IN_CONTEXT

    def model_files(self) -> tuple[str, str]:
        """The two files' names ("in-context" for that partner): what another machine
        must find for the same pair, wherever it keeps them."""
        aligned = IN_CONTEXT if self.in_context else Path(str(self.aligned)).name
        return (Path(str(self.base)).name, aligned)

    def require_same_models(self, expected: tuple[str, str] | list[str]) -> None:
        """Raise a BacoError when this spec names other files than `expected` (what the
        machine that planned the work found: a node must not quietly run another pair,
        such as the demo fallback, under the same name)."""
        found = self.model_files()
        if tuple(expected) != found:
            raise ModelFileError(
                f"the pair resolved here to {' + '.join(found)}, but the run was planned with "
                f"{' + '.join(expected)}",
                "every machine must find the same files: run `baco models pull "
                f"{self.name or 'NAME'}` on each (the one that planned the run too), or give "
                "paths on storage they share",
            )

    def recommended_settings(self) -> GenerationSettings:
        """GenerationSettings with this pair's recommended router, gamma, lead and
        sampler (from the catalog), where it has them."""
        from ..core.sampler_presets import sampler_changes

        settings = GenerationSettings()
        if self.router is not None:
            settings = settings.with_changes(router=self.router, gamma=self.gamma)
        if self.lead is not None:
            settings = settings.with_changes(lead=self.lead)
        return settings.with_changes(**sampler_changes(self.sampler, self.temperature))


def vocabulary_difference(base: Model, aligned: Model) -> int | None:
    """The first token id at which the two vocabularies differ, or None when they are one.

    Vocabularies may differ in size only by padding tokens at the end (unused, reserved
    or control tokens); ids below the smaller size must have identical texts.
    """
    if base.n_vocab != aligned.n_vocab and abs(base.n_vocab - aligned.n_vocab) > 1024:
        return min(base.n_vocab, aligned.n_vocab)  # not padding: no need to look further
    common = min(base.n_vocab, aligned.n_vocab)
    for token_id in range(common):
        if base.token_text(token_id) != aligned.token_text(token_id):
            return token_id
    larger = base if base.n_vocab > aligned.n_vocab else aligned
    for token_id in range(common, larger.n_vocab):
        text = larger.token_text(token_id)
        padding = larger.is_control(token_id) or text.startswith(_PADDING_PREFIXES)
        # an end-of-turn token out of the other model's range could never be drawn
        if not padding or larger.is_eog(token_id):
            return token_id
    return None


def check_same_vocabulary(base: Model, aligned: Model) -> None:
    """Raise VocabularyMismatchError unless both models have the same token texts."""
    token_id = vocabulary_difference(base, aligned)
    if token_id is not None:
        _mismatch(base, aligned, token_id)


def _mismatch(base: Model, aligned: Model, token_id: int) -> None:
    def show(model: Model) -> str:
        if token_id >= model.n_vocab:
            return f"(none: {model.n_vocab} tokens)"
        return repr(model.token_text(token_id).decode("utf-8", errors="replace"))

    raise VocabularyMismatchError(
        f"The models do not share one vocabulary: token {token_id} is {show(base)} in "
        f"{base.path} ({base.n_vocab} tokens) but {show(aligned)} in {aligned.path} "
        f"({aligned.n_vocab} tokens).",
        "pair a base model with its own instruct version (same family and tokenizer) for "
        "token-level routing; other pairs collaborate word by word",
    )


def spec_is_cross_tokenizer(spec: PairSpec) -> bool:
    """True when the spec's two files have different vocabularies (read vocab-only)."""
    if spec.in_context or _same_file(spec.base, spec.aligned):
        return False
    base = Model(spec.base, vocab_only=True)
    try:
        aligned = Model(spec.aligned, vocab_only=True)
        try:
            return vocabulary_difference(base, aligned) is not None
        finally:
            aligned.close()
    finally:
        base.close()


def resolve_format(model: Model, spec: str | None, role: str, notes: list[str]) -> PromptFormat:
    """Pick the prompt format for one role; say so whenever it is not the file's template."""
    if spec is None and role == BASE:
        return NAMED_FORMATS["transcript"]
    if spec in (None, "template"):
        template = model.chat_template()
        if template is None:
            flag = "--aligned-format" if role == ALIGNED else "--base-format"
            raise PromptError(
                f"{model.path.name} has no chat template in its GGUF metadata, so baco "
                f"cannot tell how to format a conversation for the {role} model.",
                f"name a format with {flag} ({', '.join(n for n in NAMED_FORMATS if n != 'raw')}"
                ", or a .jinja file), or use --raw for plain completion",
            )
        bos = model.token_id_text(model.bos_id) if model.bos_id >= 0 else ""
        eos = model.token_id_text(model.eos_id) if model.eos_id >= 0 else ""
        return template_format(template, bos_token=bos, eos_token=eos)
    chosen = named_format(spec)
    if role == ALIGNED and model.chat_template() is None and spec != IN_CONTEXT:
        notes.append(f"{model.path.name} has no chat template; using the {spec!r} format.")
    return chosen


class LoadedPair:
    """Both roles' models, formats and streams. Close it (or use `with`) to free memory."""

    def __init__(self, spec: PairSpec, load: LoadSettings | None = None):
        load = load or LoadSettings()
        self.spec = spec
        self.load_settings = load
        self.notes: list[str] = []
        self.measurements: dict = {}  # what was measured on this pair (draft costs), by key
        self._closers = []
        try:
            self._open(spec, load)
        except BaseException:
            self.close()
            raise

    def _open(self, spec: PairSpec, load: LoadSettings) -> None:
        self.base_model = self._model(spec.base, load)
        self.word_level = False  # True: the vocabularies differ, words pass as text
        if spec.in_context or _same_file(spec.base, spec.aligned):
            self.aligned_model = self.base_model
        else:
            self.aligned_model = self._model(spec.aligned, load)
            difference = vocabulary_difference(self.base_model, self.aligned_model)
            self.word_level = difference is not None
        self.shared_weights = self.aligned_model is self.base_model
        require_memory([self.base_model, self.aligned_model], load.n_ctx)  # before any context
        self.n_vocab = min(self.base_model.n_vocab, self.aligned_model.n_vocab)
        self.roles = {
            BASE: TokenRoles(
                self.base_model.n_vocab, self.base_model.piece, self.base_model.is_control
            )
        }
        self.roles[ALIGNED] = (
            self.roles[BASE]
            if not self.word_level
            else TokenRoles(
                self.aligned_model.n_vocab, self.aligned_model.piece, self.aligned_model.is_control
            )
        )
        if spec.in_context and spec.aligned_format not in (None, IN_CONTEXT):
            raise SettingsError(
                f"--aligned-format {spec.aligned_format} does not apply: the aligned partner "
                "is the base model aligned in context, which has its own format.",
                "drop --aligned-format, or give an aligned model file with --aligned",
            )
        aligned_format = IN_CONTEXT if spec.in_context else spec.aligned_format
        # A role without a usable format is an error only when a prompt needs formatting:
        # raw completion works on any file.
        self._formats: dict[str, PromptFormat | PromptError] = {}
        for role, model, fmt in (
            (BASE, self.base_model, spec.base_format),
            (ALIGNED, self.aligned_model, aligned_format),
        ):
            try:
                self._formats[role] = resolve_format(model, fmt, role, self.notes)
            except PromptError as error:
                self._formats[role] = error
        self.n_threads = load.n_threads or os.cpu_count() or 1
        # The base model scores drafted runs: room for a full run per answer in one
        # decode's output rows.
        runs = load.n_parallel * MAX_DRAFT_LENGTH
        # exact_scoring compares rows bit for bit with rows read one model at a time: a
        # decode holding both models' tokens would differ from them in rounding. A
        # context holds at most llama_max_parallel_sequences() sequences (256).
        self.one_context = (
            self.shared_weights
            and load.one_context
            and not load.exact_scoring
            and 2 * load.n_parallel <= self.base_model._llama.llama_max_parallel_sequences()
        )
        if self.one_context:
            # One context for both roles: the base's sequences first, then the aligned
            # model's, each role with the cells and sequences it would have alone.
            base = self._stream(self.base_model, load, n_outputs=runs + load.n_parallel, roles=2)
            base.limit(n_outputs=runs)  # the aligned role's rows take the rest
            aligned = Stream.on(
                base.context, load.n_parallel, base.n_ctx, load.n_parallel, base.n_batch
            )
            aligned.limit(n_outputs=load.n_parallel)
            self.streams = {BASE: base, ALIGNED: aligned}
        else:
            self.streams = {
                BASE: self._stream(self.base_model, load, n_outputs=runs),
                ALIGNED: self._stream(self.aligned_model, load),
            }
        # An in-context partner's answers may not copy its preamble's example answers.
        self.copy_guards = {}
        for role, fmt in self._formats.items():
            if isinstance(fmt, PromptFormat) and fmt.keep_out:
                model = self.streams[role].model
                texts = [model.tokenize(text, special=False) for text in fmt.keep_out]
                self.copy_guards[role] = CopyGuard(texts)
        self._stores = {}
        if load.prompt_cache:
            for role, fmt in self._formats.items():
                if isinstance(fmt, PromptFormat) and fmt.fixed_prefix:
                    stream = self.streams[role]
                    layout = "one context" if self.one_context else "a context per role"
                    self._stores[role] = PrefixStore(stream.model, stream.n_ctx, layout=layout)

    def _model(self, path, load: LoadSettings) -> Model:
        check_writes_text(path)
        model = Model(path, n_gpu_layers=load.n_gpu_layers, verbose=load.verbose)
        self._closers.append(model.close)
        return model

    def _stream(
        self, model: Model, load: LoadSettings, n_outputs: int = 1, roles: int = 1
    ) -> Stream:
        """A stream with a context of its own (room for n_parallel answers, and logits
        rows for n_outputs tokens in one decode); roles: how many roles' streams share
        the context (each gets n_ctx cells, n_parallel sequences and n_batch tokens of
        each decode; this is the first)."""
        n_ctx = load.n_ctx
        if model.n_ctx_train and n_ctx > model.n_ctx_train:
            # Past its training length a model degrades, and the KV cache alone can
            # exhaust memory (--ctx 1048576 took 21 GB before the kernel killed it).
            n_ctx = model.n_ctx_train
            note = f"{model.path.name} was trained for {n_ctx} tokens; using --ctx {n_ctx}."
            if note not in self.notes:
                self.notes.append(note)
        # A decode holds each role's prompt chunk (n_batch each), and every row with
        # logits one step may need (a row per answer and role, a drafted run's rows): a
        # smaller batch would make llama.cpp abort on a step of many answers.
        n_batch = max(load.n_batch * roles, n_outputs, load.n_parallel * roles)
        stream = Stream(
            model,
            n_ctx=n_ctx * roles,
            n_batch=n_batch,
            n_threads=self.n_threads,
            n_seq_max=load.n_parallel * roles,
            n_outputs=n_outputs,
            shared=roles > 1,
        )
        self._closers.insert(0, stream.close)  # contexts go before their models
        stream.limit(n_ctx, load.n_parallel, load.n_batch)
        return stream

    @property
    def label(self) -> str:
        """How this pair is shown everywhere: honest about the in-context partner."""
        name = self.spec.name or _short(self.base_model.path)
        if self.spec.in_context:
            return f"{name} (base + in-context aligned)"
        if not self.spec.name:
            name = f"{_short(self.base_model.path)} + {_short(self.aligned_model.path)}"
        return f"{name} (cross-tokenizer)" if self.word_level else name

    def prepare(self, role: str, messages, *, raw: bool = False) -> Prompt:
        """Format and tokenize the conversation for `role` (raw: the text unchanged)."""
        fmt = NAMED_FORMATS["raw"] if raw else self.prompt_format(role)
        tokens = self.tokenize_prompt(role, fmt.render(messages))
        return Prompt(tokens, 0 if raw else self._fixed_length(role, fmt, tokens))

    def start(self, role: str, prompt: Prompt) -> None:
        """Make `prompt` the role's sequence. A format's fixed preamble is read as its own
        segment and kept on disk (PrefixStore), so the next process skips reading it."""
        self.streams[role].start(prompt.tokens, fixed=prompt.fixed, store=self._stores.get(role))

    def _fixed_length(self, role: str, fmt: PromptFormat, tokens: list[int]) -> int:
        if not fmt.fixed_prefix:
            return 0
        prefix = self.tokenize_prompt(role, fmt.fixed_prefix)
        return len(prefix) if tokens[: len(prefix)] == prefix else 0

    def tokenize_prompt(self, role: str, text: str) -> list[int]:
        """Prompt text (special tokens written as text) -> ids, with BOS when the model wants it."""
        model = self.streams[role].model
        tokens = model.tokenize(text, add_bos=False, special=True)
        if model.add_bos and model.bos_id >= 0 and (not tokens or tokens[0] != model.bos_id):
            tokens.insert(0, model.bos_id)
        if len(tokens) < 1:
            raise PromptError("The prompt is empty.", "give some text to start from")
        return tokens

    def prompt_format(self, role: str) -> PromptFormat:
        """The role's prompt format; raises the PromptError found at load if it has none."""
        fmt = self._formats[role]
        if isinstance(fmt, PromptError):
            raise fmt
        return fmt

    @property
    def base_format(self) -> PromptFormat:
        return self.prompt_format(BASE)

    @property
    def aligned_format(self) -> PromptFormat:
        return self.prompt_format(ALIGNED)

    def end_token_ids(self) -> frozenset[int]:
        """Token ids that end an answer: the formats' end-of-turn markers (EOG is checked
        live). For a pair with one vocabulary, both roles' markers together."""
        by_role = self.end_token_ids_by_role()
        return by_role[BASE] | by_role[ALIGNED]

    def end_token_ids_by_role(self) -> dict[str, frozenset[int]]:
        """Each role's end-of-turn marker ids, in its own vocabulary (on a pair with one
        vocabulary, both formats' markers count for both roles)."""
        ids: dict[str, set[int]] = {BASE: set(), ALIGNED: set()}
        for fmt in (self.base_format, self.aligned_format):
            for role in (BASE, ALIGNED):
                model = self.streams[role].model
                for marker in fmt.end_markers:
                    found = model.tokenize(marker, add_bos=False, special=True)
                    if len(found) == 1 and model.is_control(found[0]):
                        ids[role].add(found[0])
        if not self.word_level:
            shared = ids[BASE] | ids[ALIGNED]
            return {BASE: frozenset(shared), ALIGNED: frozenset(shared)}
        return {role: frozenset(found) for role, found in ids.items()}

    def check_settings(self, settings) -> None:
        """Raise SettingsError for settings this pair cannot honour (before any work)."""
        if self.word_level and settings.router == "ensemble":
            raise SettingsError(
                "The ensemble baseline mixes the two models' next-token distributions, "
                "which needs one vocabulary; this pair's models have two.",
                "pick another router; `random` is the baseline that mixes the models "
                "without reading them (a model per word, at random)",
            )

    def prefix_store(self, role: str):
        """The role's PrefixStore (its fixed preamble kept on disk), or None."""
        return self._stores.get(role)

    def close(self) -> None:
        closers, self._closers = self._closers, []
        for close in closers:
            close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _same_file(a, b) -> bool:
    try:
        return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
    except (OSError, TypeError):
        return False


def _short(path: Path) -> str:
    return path.name.removesuffix(".gguf")

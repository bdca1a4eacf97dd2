"""Settings as frozen dataclasses, validated once, with messages that name the valid range."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

from ..errors import SettingsError
from .routers import DEFAULT_ROUTER, get_router, not_a_number


def _require(ok: bool, message: str, hint: str) -> None:
    if not ok:
        raise SettingsError(message, hint)


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)  # True is not a count


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


SPECULATIVE_MODES = ("auto", "on", "off")  # the choices of GenerationSettings.speculative


def _setting(default=None, *, help: str, metavar: str | None = None, factory=None, choices=None):
    """A GenerationSettings field with its one help text: the CLI options, the server's
    request fields and the `llm` options are all derived from these (settings_fields.py)."""
    metadata = {"help": help, "metavar": metavar, "choices": choices}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class GenerationSettings:
    """How one answer is generated: routing, sampling and stopping.

    Each field's help (its metadata) is the one description of it: `baco run --help`,
    the server's request fields and `llm -o` options all show that text.
    """

    router: str = _setting(
        DEFAULT_ROUTER,
        metavar="NAME",
        help="who writes each word: a name from `baco routers`",
    )
    gamma: float | None = _setting(
        None, metavar="G", help="the router's diversity dial (none: the router's own default)"
    )
    temperature: float = _setting(
        0.8, metavar="T", help="0 is greedy; applied before the filters below"
    )
    top_k: int = _setting(40, metavar="K", help="keep the k most likely tokens (0 = off)")
    min_p: float = _setting(
        0.05,
        metavar="P",
        help="keep tokens at least min_p times as likely as the most likely one (0 = off)",
    )
    top_p: float = _setting(
        0.95,
        metavar="P",
        help="then keep the smallest set of most likely tokens whose mass reaches top_p (1 = off)",
    )
    max_tokens: int = _setting(256, metavar="N", help="new tokens at most")
    seed: int | None = _setting(
        None,
        metavar="S",
        help="fixed seed for a reproducible answer (none: a fresh seed, which results "
        "report so a run can be replayed)",
    )
    stop: tuple[str, ...] = _setting(
        factory=tuple,
        metavar="TEXT",
        help="extra text that ends the answer (the answer excludes it); repeatable",
    )
    lead: int = _setting(
        3,
        metavar="N",
        help="the aligned model writes the first N tokens of every answer (any router but "
        "base), so a base model's habit of echoing the question cannot set the answer's "
        "direction; 0 routes from the first token, as the paper does",
    )
    # lead 3: on the default pair it raised every diversity metric at equal quality
    # (self-BLEU 0.22 -> 0.12 for p-punc; see the README).
    repeat_penalty: float = _setting(
        1.1,
        metavar="R",
        help="tokens among the answer's last repeat_last_n are made less likely (logit / "
        "penalty when positive, x penalty when negative), as in llama.cpp; 1 = off. Applied "
        "when sampling, not to the signals the router reads",
    )
    repeat_last_n: int = _setting(
        64, metavar="N", help="how many recent tokens the repeat penalty looks back at"
    )
    speculative: str = _setting(
        "auto",
        metavar="MODE",
        choices=SPECULATIVE_MODES,
        help="on: the aligned model drafts runs of tokens that the base model reads in one "
        "batch, each draft kept or replaced so answers follow the same distribution "
        "(greedy answers are the same token for token); off: every token is routed and read "
        "by both models in turn; auto: on where it pays on this host and pair",
    )

    def __post_init__(self) -> None:
        _require(
            isinstance(self.router, str),
            f"router {self.router!r} is not a router's name.",
            "name one of `baco routers`, e.g. p-punc",
        )
        spec = get_router(self.router)
        object.__setattr__(self, "gamma", spec.check_gamma(self.gamma))
        if isinstance(self.stop, str):  # one stop string, as OpenAI's API takes it
            object.__setattr__(self, "stop", (self.stop,))
        _require(
            isinstance(self.stop, (list, tuple)),
            f"stop {self.stop!r} is not a string or a list of strings.",
            "give stop strings as a list (or repeat --stop)",
        )
        object.__setattr__(self, "stop", tuple(self.stop))
        _require(
            _is_number(self.temperature) and 0 <= self.temperature <= 5,
            _out_of_range("temperature", self.temperature),
            "use a value in [0, 5]; 0 is greedy, 0.7-1.0 is usual",
        )
        _require(
            _is_int(self.top_k) and self.top_k >= 0,
            _not_whole("top_k", self.top_k, "a non-negative integer"),
            "use 0 to turn top-k off, or a positive count such as 40",
        )
        _require(
            _is_number(self.min_p) and 0 <= self.min_p < 1,
            _out_of_range("min_p", self.min_p),
            "use a value in [0, 1); 0 turns min-p off, 0.05 is usual",
        )
        _require(
            _is_number(self.top_p) and 0 < self.top_p <= 1,
            _out_of_range("top_p", self.top_p),
            "use a value in (0, 1]; 1 turns top-p off, 0.95 is usual",
        )
        _require(
            _is_int(self.max_tokens) and self.max_tokens > 0,
            _not_whole("max_tokens", self.max_tokens, "a positive integer"),
            "ask for at least 1 new token, e.g. 256",
        )
        _require(
            self.seed is None or (_is_int(self.seed) and 0 <= self.seed < 2**63),
            _not_whole("seed", self.seed, "a whole number from 0 to 2**63 - 1"),
            "use a whole number such as 42, or leave it out for a fresh one",
        )
        _require(
            _is_number(self.repeat_penalty) and 0.5 <= self.repeat_penalty <= 2,
            _out_of_range("repeat_penalty", self.repeat_penalty),
            "use a value in [0.5, 2]; 1 turns it off, 1.1 is usual",
        )
        _require(
            _is_int(self.repeat_last_n) and 0 <= self.repeat_last_n <= 4096,
            _out_of_range("repeat_last_n", self.repeat_last_n),
            "use 0 (off) up to 4096 tokens, e.g. 64",
        )
        _require(
            _is_int(self.lead) and 0 <= self.lead <= 1024,
            _out_of_range("lead", self.lead),
            "use 0 (route from the first token) up to a few tokens, e.g. 3",
        )
        _require(
            isinstance(self.speculative, str) and self.speculative in SPECULATIVE_MODES,
            f"speculative {self.speculative!r} is not a mode.",
            f"use one of {', '.join(SPECULATIVE_MODES)}",
        )
        _require(
            all(isinstance(s, str) and s for s in self.stop),
            "stop strings must be non-empty text.",
            "pass each stop string as non-empty text",
        )

    def with_changes(self, **changes) -> GenerationSettings:
        """A copy with some fields changed (validated again). Changing the router resets gamma
        to that router's default unless gamma is given too."""
        if "router" in changes and "gamma" not in changes and changes["router"] != self.router:
            changes["gamma"] = None
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain data (JSON-ready); from_dict(to_dict()) gives these settings back."""
        return {**asdict(self), "stop": list(self.stop)}

    @classmethod
    def from_dict(cls, data: dict) -> GenerationSettings:
        return cls(**data)


@dataclass(frozen=True)
class LoadSettings:
    """How models are loaded.

    n_ctx: context length in tokens for each model (prompt + answer).
    n_threads: CPU threads in all (None = all cores); split between the two models when
        they run at the same time.
    n_gpu_layers: layers to offload; None = all when the build has a GPU backend, else 0.
    n_batch: tokens per llama_decode call when reading a prompt.
    verbose: let llama.cpp's own log through to stderr.
    prompt_cache: keep the in-context preamble's cache on disk for the next process.
    n_parallel: answers to one prompt decoded together at most (brainstorm, -n, eval);
        more are generated in groups of this size. They share the context: a group
        holds the prompt once plus each answer's tokens.
    exact_scoring: the base model reads a speculative run one token per decode, so its
        logits are bit for bit those the loop without speculation reads, and a greedy
        answer is the same token for token (llama.cpp's rows read in one batch can
        differ from rows read one at a time in rounding). Slower: for checking.
    one_context: when both roles use the same weights (the in-context partner, or one
        file twice), they share one llama.cpp context, each with sequences of its own,
        and a step that needs both decodes their tokens in one batch: the weights are
        read once for the two (a step of the in-context Gemma 3 270M pair: 1.1-1.2x one
        model's decode instead of 2x). False (or exact_scoring): a context per role, as
        for two files. llama.cpp's rounding depends on which tokens share a decode and
        where their cells lie, so the two layouts give different answers to one seed;
        each replays its own.
    """

    n_ctx: int = 4096
    n_threads: int | None = None
    n_gpu_layers: int | None = None
    n_batch: int = 256
    verbose: bool = False
    prompt_cache: bool = True
    n_parallel: int = 8
    exact_scoring: bool = False
    one_context: bool = True

    def __post_init__(self) -> None:
        _require(
            isinstance(self.n_ctx, int) and 256 <= self.n_ctx <= 1_048_576,
            f"context size {self.n_ctx} is out of range.",
            "use --ctx (n_ctx in Python) with a value between 256 (llama.cpp's smallest) "
            "and 1048576, e.g. 4096",
        )
        _require(
            self.n_threads is None or (isinstance(self.n_threads, int) and self.n_threads > 0),
            f"threads {self.n_threads} must be a positive integer.",
            "leave --threads out to use every core",
        )
        _require(
            self.n_gpu_layers is None
            or (isinstance(self.n_gpu_layers, int) and self.n_gpu_layers >= -1),
            f"n_gpu_layers {self.n_gpu_layers} is not valid.",
            "use 0 for CPU only, -1 or leave it out for all layers on the GPU",
        )
        _require(
            isinstance(self.n_parallel, int) and 1 <= self.n_parallel <= 256,
            f"parallel answers {self.n_parallel} is out of range.",
            "use --parallel with a value between 1 and 256, e.g. 8",
        )
        _require(
            isinstance(self.n_batch, int) and 1 <= self.n_batch <= 8192,
            f"n_batch {self.n_batch} is out of range.",
            "use a value between 1 and 8192, e.g. 256",
        )

    def to_dict(self) -> dict:
        """Plain data (JSON-ready); from_dict(to_dict()) gives these settings back."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> LoadSettings:
        return cls(**data)


def check_settings_object(settings, what: str = "settings") -> None:
    """Raise SettingsError unless `settings` is a GenerationSettings (a dict, say, is not)."""
    if not isinstance(settings, GenerationSettings):
        raise SettingsError(
            f"{what} must be a GenerationSettings, not {type(settings).__name__}.",
            "pass GenerationSettings(seed=1, ...), or give the fields as keywords (seed=1)",
        )


def _out_of_range(name: str, value) -> str:
    """The message for a value outside its range, or of the wrong type altogether."""
    if not_a_number(value):
        return f"{name} {value!r} is not a number."
    return f"{name} {value!r} is out of range."


def _not_whole(name: str, value, what: str) -> str:
    return f"{name} {value!r} is not {what}."

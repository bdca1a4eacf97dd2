"""Settings as frozen dataclasses, validated once, with messages that name the valid range."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from ..errors import SettingsError
from .routers import DEFAULT_ROUTER, get_router


def _require(ok: bool, message: str, hint: str) -> None:
    if not ok:
        raise SettingsError(message, hint)


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


SPECULATIVE_MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class GenerationSettings:
    """How one answer is generated: routing, sampling and stopping.

    router: a name from `baco routers` (default p-punc).
    gamma: the router's dial; None means the router's default.
    temperature: 0 means greedy; applied before the filters below.
    top_k: keep the k most likely tokens (0 = off).
    min_p: keep tokens at least min_p times as likely as the most likely one (0 = off).
    top_p: then keep the smallest set of most likely tokens whose mass reaches top_p (1 = off).
    max_tokens: new tokens at most.
    seed: None draws a fresh seed, which results report so a run can be replayed.
    stop: extra strings that end the answer (the answer excludes them).
    repeat_penalty, repeat_last_n: tokens among the answer's last repeat_last_n are
        made less likely (logit / penalty when positive, x penalty when negative), as in
        llama.cpp and Ollama; 1 turns it off. Applied when sampling, not to the signals
        the router reads.
    lead: the aligned model writes the first `lead` tokens of every answer (any router
        but `base`), so that a base model's habit of opening by echoing the question
        cannot set the answer's direction; 0 routes from the first token, as the
        paper does. Default 3: on the default pair it raised every diversity metric
        at equal quality (self-BLEU 0.22 -> 0.12 for p-punc; see the README).
    speculative: "on": the aligned model drafts runs of tokens that the base model reads
        in one batch, and each draft is kept or replaced so that answers follow the
        same distribution as without it (greedy answers are the same token for token);
        "off": every token is routed and read by both models in turn (the loop before
        speculation, with its seeded outputs); "auto" (default): on where it pays on
        this host and pair, by the decode costs measured here. Pairs of one vocabulary.
    """

    router: str = DEFAULT_ROUTER
    gamma: float | None = None
    temperature: float = 0.8
    top_k: int = 40
    min_p: float = 0.05
    top_p: float = 0.95
    max_tokens: int = 256
    seed: int | None = None
    stop: tuple[str, ...] = field(default_factory=tuple)
    lead: int = 3
    repeat_penalty: float = 1.1
    repeat_last_n: int = 64
    speculative: str = "auto"

    def __post_init__(self) -> None:
        spec = get_router(self.router)
        object.__setattr__(self, "gamma", spec.check_gamma(self.gamma))
        object.__setattr__(self, "stop", tuple(self.stop))
        _require(
            _is_number(self.temperature) and 0 <= self.temperature <= 5,
            f"temperature {self.temperature} is out of range.",
            "use a value in [0, 5]; 0 is greedy, 0.7-1.0 is usual",
        )
        _require(
            isinstance(self.top_k, int) and self.top_k >= 0,
            f"top_k {self.top_k} is not a non-negative integer.",
            "use 0 to turn top-k off, or a positive count such as 40",
        )
        _require(
            _is_number(self.min_p) and 0 <= self.min_p < 1,
            f"min_p {self.min_p} is out of range.",
            "use a value in [0, 1); 0 turns min-p off, 0.05 is usual",
        )
        _require(
            _is_number(self.top_p) and 0 < self.top_p <= 1,
            f"top_p {self.top_p} is out of range.",
            "use a value in (0, 1]; 1 turns top-p off, 0.95 is usual",
        )
        _require(
            isinstance(self.max_tokens, int) and self.max_tokens > 0,
            f"max_tokens {self.max_tokens} must be a positive integer.",
            "ask for at least 1 new token, e.g. --max-tokens 256",
        )
        _require(
            self.seed is None or (isinstance(self.seed, int) and 0 <= self.seed < 2**63),
            f"seed {self.seed} is not a non-negative integer.",
            "use a whole number such as --seed 42, or leave it out for a fresh one",
        )
        _require(
            _is_number(self.repeat_penalty) and 0.5 <= self.repeat_penalty <= 2,
            f"repeat_penalty {self.repeat_penalty} is out of range.",
            "use a value in [0.5, 2]; 1 turns it off, 1.1 is usual",
        )
        _require(
            isinstance(self.repeat_last_n, int) and 0 <= self.repeat_last_n <= 4096,
            f"repeat_last_n {self.repeat_last_n} is out of range.",
            "use 0 (off) up to 4096 tokens, e.g. 64",
        )
        _require(
            isinstance(self.lead, int) and 0 <= self.lead <= 1024,
            f"lead {self.lead} is out of range.",
            "use 0 (route from the first token) up to a few tokens, e.g. --lead 3",
        )
        _require(
            self.speculative in SPECULATIVE_MODES,
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
    """

    n_ctx: int = 4096
    n_threads: int | None = None
    n_gpu_layers: int | None = None
    n_batch: int = 256
    verbose: bool = False
    prompt_cache: bool = True
    n_parallel: int = 8
    exact_scoring: bool = False

    def __post_init__(self) -> None:
        _require(
            isinstance(self.n_ctx, int) and 256 <= self.n_ctx <= 1_048_576,
            f"context size {self.n_ctx} is out of range.",
            "use --ctx with a value between 256 (llama.cpp's smallest) and 1048576, e.g. 4096",
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

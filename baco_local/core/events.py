"""What a generation produces: one event per token, then a result with the text and stats."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from .settings import GenerationSettings


@dataclass(frozen=True)
class TokenEvent:
    """One generated token.

    source: "base" or "aligned", the model whose distribution the token was drawn from.
    routed: True when the router decided at this token (a word start); False when the
        model that started the current word continued it.
    decision: what the router chose (may differ from source when the chosen model's draw
        would have continued the other model's word: the switch then waits a token).
    top1_prob, entropy: the base model's signals at this step, when they were computed
        (routers that read the base, at word starts); None otherwise.
    answer: which answer the token belongs to, when several are generated together
        (0 for a single answer).
    """

    index: int
    id: int
    text: str
    source: str
    routed: bool
    decision: str | None = None
    top1_prob: float | None = None
    entropy: float | None = None
    answer: int = 0


@dataclass(frozen=True)
class GenerationStats:
    """tokens: tokens in the answer. base_fraction: share of them drawn from the base.
    tokens_per_second: generated tokens over the time from the first token to the end.
    ttft_seconds: from the start (prompt reading included) to the first token."""

    tokens: int
    base_tokens: int
    prompt_tokens: dict[str, int]
    ttft_seconds: float
    decode_seconds: float
    routing_seconds: float = 0.0  # numpy routing and sampling, within decode_seconds
    model_seconds: float = 0.0  # inside llama.cpp after the first token, within decode_seconds

    @property
    def base_fraction(self) -> float:
        return self.base_tokens / self.tokens if self.tokens else 0.0

    @property
    def tokens_per_second(self) -> float:
        generated = max(self.tokens - 1, 0)
        return generated / self.decode_seconds if self.decode_seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {
            "tokens": self.tokens,
            "base_tokens": self.base_tokens,
            "base_fraction": round(self.base_fraction, 4),
            "tokens_per_second": round(self.tokens_per_second, 2),
            "ttft_seconds": round(self.ttft_seconds, 4),
            "prompt_tokens": dict(self.prompt_tokens),
        }


def known(x: float) -> float | None:
    """A signal for an event: None where it was not measured (NaN)."""
    return None if math.isnan(x) else x


FINISH_REASONS = {
    "eog": "the model ended its turn",
    "stop": "a stop string appeared",
    "length": "max tokens reached",
    "context": "the context window is full",
    "cancelled": "stopped by the user",
}


@dataclass(frozen=True)
class Result:
    """A finished (or interrupted) answer. settings.seed is the seed actually used."""

    text: str
    tokens: tuple[TokenEvent, ...]
    finish_reason: str
    settings: GenerationSettings
    stats: GenerationStats
    pair: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        """The JSON shape of `baco run --json`."""
        return {
            "text": self.text,
            "pair": self.pair,
            "router": self.settings.router,
            "gamma": self.settings.gamma,
            "seed": self.settings.seed,
            "finish_reason": self.finish_reason,
            "settings": {
                k: v
                for k, v in asdict(self.settings).items()
                if k not in ("router", "gamma", "seed")
            },
            "stats": self.stats.to_dict(),
            "tokens": [
                {"id": t.id, "text": t.text, "source": t.source, "routed": t.routed}
                | ({} if t.top1_prob is None else {"top1_prob": round(t.top1_prob, 4)})
                | ({} if t.entropy is None else {"entropy": round(t.entropy, 4)})
                for t in self.tokens
            ],
        }

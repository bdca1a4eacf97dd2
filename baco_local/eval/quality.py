"""Quality of one answer, read from a judge model (the pair's aligned model unless
`baco eval --judge` names another): two numbers.

- `judge`: the aligned model is asked to rate the answer on a fixed 1-5 rubric; the
  score is the expectation of the rating under its next-token distribution restricted
  to the rubric's digit tokens, sum_s s * p(s) / sum_s p(s), not parsed text. Higher is
  better; always in [1, 5].
- `loglik`: the judge's mean log-probability (nats) of the answer's tokens given the
  prompt in its format. Higher is better (more fluent, more expected).

The pure parts (`rubric_expectation`, `mean_logprob`) take numpy arrays; `QualityScorer`
runs them on a llama.cpp stream of its own over the judge model.
"""

from __future__ import annotations

import math

import numpy as np

from ..backend import Stream
from ..core.routers import ALIGNED
from ..errors import PromptError
from ..pairs.prompt_formats import Message

RUBRIC_SCORES = (1, 2, 3, 4, 5)
# Bump when the rubric or the scoring changes: stored results are then scored again.
QUALITY_VERSION = 1

JUDGE_RUBRIC = """\
You are grading an answer that an assistant wrote to a user's request. Rate it on this \
scale:
5 - excellent: on topic, helpful, fluent and complete, with an original touch;
4 - good: on topic and fluent, with small flaws;
3 - acceptable: answers the request but is bland, clumsy or partly off;
2 - poor: mostly off topic, confusing, or badly written;
1 - very poor: empty, incoherent, or ignores the request.

Request:
{prompt}

Answer:
{answer}

Reply with the rating only, one digit from 1 to 5."""
JUDGE_PREFIX = "Rating: "


def rubric_expectation(logits: np.ndarray, score_token_ids: list[list[int]]) -> float:
    """The probability-weighted rubric score from one next-token logits row.

    logits: shape (n_vocab,), any float dtype; not modified. score_token_ids[i]: the token
    ids that spell RUBRIC_SCORES[i] (e.g. "4" and " 4"); their probabilities are summed.
    Returns sum_i score_i * p_i / sum_i p_i, computed from logits in float64.
    """
    values = np.asarray(logits, dtype=np.float64)
    ids = [np.asarray(group, dtype=np.int64) for group in score_token_ids]
    top = max(float(values[group].max()) for group in ids if len(group))
    mass = np.array([np.exp(values[group] - top).sum() for group in ids])
    scores = np.asarray(RUBRIC_SCORES[: len(ids)], dtype=np.float64)
    return float((scores * mass).sum() / mass.sum())


def mean_logprob(logprobs: np.ndarray) -> float:
    """Mean of per-token log-probabilities; nan for an empty answer."""
    logprobs = np.asarray(logprobs, dtype=np.float64)
    return float(logprobs.mean()) if logprobs.size else math.nan


def score_token_ids(tokenize) -> list[list[int]]:
    """For each rubric score, the single tokens that spell it, with and without a space."""
    groups = []
    for score in RUBRIC_SCORES:
        ids = {tuple(tokenize(f"{s}{score}")) for s in ("", " ")}
        groups.append(sorted(t[0] for t in ids if len(t) == 1))
    if not all(groups):
        raise PromptError(
            "This model's vocabulary has no single token for each of the digits 1-5, so it "
            "cannot be used as a rubric judge.",
            "evaluate with a pair whose aligned model spells digits as single tokens",
        )
    return groups


class QualityScorer:
    """Scores answers with one model (the judge) on a context of its own.

    By default the judge is the pair's aligned model (`for_pair`); `for_file` loads
    another GGUF, so that two pairs can be compared by the same judge.
    """

    def __init__(self, model, fmt, tokenize_prompt, *, n_ctx: int, n_batch: int, n_threads: int):
        self.model = model
        self.format = fmt
        self._tokenize_prompt = tokenize_prompt
        self._owned = []
        self.stream = Stream(model, n_ctx=n_ctx, n_batch=n_batch, n_threads=n_threads, n_outputs=32)
        self.score_ids = score_token_ids(lambda t: model.tokenize(t, add_bos=False))

    @classmethod
    def for_pair(cls, loaded, *, n_threads: int, n_ctx: int | None = None) -> QualityScorer:
        """The pair's aligned model, in its own prompt format."""
        load = loaded.load_settings
        return cls(
            loaded.aligned_model,
            loaded.aligned_format,
            lambda text: loaded.tokenize_prompt(ALIGNED, text),
            n_ctx=n_ctx or load.n_ctx,
            n_batch=load.n_batch,
            n_threads=n_threads,
        )

    @classmethod
    def for_file(cls, path, *, n_ctx: int, n_batch: int, n_threads: int) -> QualityScorer:
        """Another GGUF as the judge: an instruct model with a chat template."""
        from ..backend import Model
        from ..pairs.prompt_formats import template_format

        model = Model(path)
        try:
            template = model.chat_template()
            if template is None:
                raise PromptError(
                    f"The judge {model.path.name} has no chat template, so baco cannot ask "
                    "it for a rating.",
                    "judge with an instruct model that has one (or with 'aligned')",
                )
            bos = model.token_id_text(model.bos_id) if model.bos_id >= 0 else ""
            eos = model.token_id_text(model.eos_id) if model.eos_id >= 0 else ""
            fmt = template_format(template, bos_token=bos, eos_token=eos)

            def tokenize_prompt(text: str) -> list[int]:
                tokens = model.tokenize(text, add_bos=False, special=True)
                if model.add_bos and model.bos_id >= 0 and tokens[:1] != [model.bos_id]:
                    tokens.insert(0, model.bos_id)
                return tokens

            n_ctx = min(n_ctx, model.n_ctx_train or n_ctx)
            scorer = cls(
                model, fmt, tokenize_prompt, n_ctx=n_ctx, n_batch=n_batch, n_threads=n_threads
            )
        except BaseException:
            model.close()
            raise
        scorer._owned.append(model)
        return scorer

    def _prompt_tokens(self, text: str, suffix: str = "") -> list[int]:
        rendered = self.format.render((Message("user", text),)) + suffix
        return self._tokenize_prompt(rendered)

    def loglik(self, prompt: str, answer: str) -> float:
        """Mean log-probability per answer token; nan when the answer is empty or too long."""
        answer_tokens = self.model.tokenize(answer, add_bos=False, special=False)
        if not answer_tokens:
            return math.nan
        try:
            logprobs = self.stream.score(self._prompt_tokens(prompt), answer_tokens)
        except PromptError:
            return math.nan
        return mean_logprob(logprobs)

    def judge(self, prompt: str, answer: str, rubric: str = JUDGE_RUBRIC) -> float:
        """The rubric score in [1, 5]; nan when the rating prompt does not fit the context.
        rubric: the rating request, with {prompt} and {answer} (judge_check varies it)."""
        request = rubric.format(prompt=prompt.strip(), answer=answer.strip() or "(empty)")
        tokens = self._prompt_tokens(request, JUDGE_PREFIX)
        if len(tokens) >= self.stream.n_ctx:
            return math.nan
        self.stream.start(tokens)
        self.stream.catch_up()
        return rubric_expectation(self.stream.logits(), self.score_ids)

    def close(self) -> None:
        self.stream.close()
        for model in self._owned:
            model.close()

"""Draw one token from a row of logits: temperature, top-k, min-p, top-p, then the pick.

The logits row is borrowed (a view of llama.cpp's buffer): it is read, never written.
Work happens in buffers owned by the sampler and allocated once, and no step sorts the
whole vocabulary: min-p (or else top-k) becomes one threshold found in O(n_vocab), and
only the few survivors are sorted and exponentiated.

Order of operations (documented because samplers differ):
  1. divide by the temperature (0 = greedy: return the first argmax);
  2. top-k keeps the k highest logits; min-p keeps tokens whose probability is at least
     min_p times the top one; both are one cut on the scaled logits;
  3. top-p keeps the smallest prefix of the survivors, most likely first, whose
     renormalised mass reaches top_p;
  4. inverse-CDF pick with the uniform draw `u`, ties ordered by token id.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from .distribution import Dist, make_dist, point
from .settings import GenerationSettings

# When neither top-k nor min-p bounds the candidates, top-p looks at this many of the
# most likely tokens first and widens only if their mass is not enough.
_TOP_P_FIRST_LOOK = 256


class Sampler:
    """Draws token ids from logits rows of one vocabulary size, reusing its buffers."""

    def __init__(self, n_vocab: int, settings: GenerationSettings):
        self.n_vocab = n_vocab
        self.temperature = settings.temperature
        self.top_k = settings.top_k if 0 < settings.top_k < n_vocab else 0
        self.log_min_p = math.log(settings.min_p) if settings.min_p > 0 else -math.inf
        self.top_p = settings.top_p
        self.repeat_penalty = float(settings.repeat_penalty)  # a numpy scalar would round otherwise
        self._scratch = np.empty(n_vocab, dtype=np.float32)
        self._mask = np.empty(n_vocab, dtype=np.bool_)
        self._penalised = np.empty(n_vocab, dtype=np.float32)
        # k rows at once (draw_rows): grown to the largest k seen, then reused
        self._rows = np.empty((0, n_vocab), dtype=np.float32)
        self._rows_mask = np.empty((0, n_vocab), dtype=np.bool_)

    def draw(
        self, logits: np.ndarray, u: float, recent: Iterable[int] = (), banned: Iterable[int] = ()
    ) -> int:
        """Return one token id.

        logits: shape (n_vocab,), float32, not modified.
        u: a uniform draw in [0, 1) that decides the pick (unused when greedy).
        recent: tokens the repetition penalty applies to (the answer's last few).
        banned: tokens that may not be drawn (a CopyGuard's; never all of them).
        """
        banned = list(banned)
        if self._min_p_without_copy(banned):
            return _pick(*self._ranked(*self._min_p_survivors(logits, set(recent))), u)
        logits = _ban(self.penalise(logits, recent), banned, self._penalised)
        if self.temperature == 0:
            return int(np.argmax(logits))
        return _pick(*self.candidates(logits), u)

    def distribution(
        self, logits: np.ndarray, recent: Iterable[int] = (), banned: Iterable[int] = ()
    ) -> Dist:
        """The distribution `draw` samples from, after every step but the pick: the
        repetition penalty, the bans, temperature, top-k, min-p and top-p. Greedy: all
        the mass on the token `draw` returns. logits: (n_vocab,), float32, not modified."""
        banned = list(banned)
        if self._min_p_without_copy(banned):
            return make_dist(*self._ranked(*self._min_p_survivors(logits, set(recent))))
        logits = _ban(self.penalise(logits, recent), banned, self._penalised)
        if self.temperature == 0:
            return point(int(np.argmax(logits)))
        return make_dist(*self.candidates(logits))

    def draw_rows(
        self,
        rows: np.ndarray,
        us: Sequence[float],
        recents: Sequence[Iterable[int]],
        banned: Sequence[Iterable[int]] | None = None,
    ) -> list[int]:
        """One token per row, the same as draw(rows[i], us[i], recents[i], banned[i]).

        rows: shape (k, n_vocab), float32, not modified. The work over the vocabulary
        (penalty, maxima, the min-p or top-k cut) is done on all rows at once; only the
        few survivors of each row are then sorted and picked from, row by row.
        """
        self._grow(len(rows))
        no_ban = banned is None or not any(banned)
        if no_ban and self.temperature > 0 and self.log_min_p > -math.inf:
            return self._draw_rows_min_p(rows, us, recents)
        penalised = self._penalise_rows(rows, recents)
        if not no_ban:
            if penalised is rows:  # never the caller's array
                penalised = self._rows[: len(rows)]
                np.copyto(penalised, rows)
            rows = penalised
            for seq, tokens in enumerate(banned):
                rows[seq, list(tokens)] = -np.inf
        else:
            rows = penalised
        if self.temperature == 0:
            return [int(i) for i in np.argmax(rows, axis=1)]
        if self.log_min_p == -math.inf and not self.top_k:  # no cut to share
            return [_pick(*self.candidates(row), u) for row, u in zip(rows, us, strict=True)]
        tops = rows.max(axis=1)
        cut = np.partition(rows, self.n_vocab - self.top_k, axis=1)[:, self.n_vocab - self.top_k]
        mask = self._rows_mask[: len(rows)]
        np.greater_equal(rows, np.asarray(cut, dtype=np.float32)[:, None], out=mask)
        row_of, ids = _true_positions(mask)
        bounds = np.searchsorted(row_of, np.arange(len(rows) + 1))
        return [
            self._finish(ids[bounds[seq] : bounds[seq + 1]], rows[seq], float(tops[seq]), u)
            for seq, u in enumerate(us)
        ]

    # --- min-p with a repetition penalty, without a penalised copy of the row ------------
    #
    # A penalty of 1 or more only lowers logits, so the penalised row's maximum is at
    # least the penalised value of the raw row's top token, and every token above the
    # penalised row's min-p cut lies above `that value + T ln(min_p)` in the raw row too.
    # So the vocabulary is compared once, against that bound (the true cut when the top
    # token is not recent): only the few tokens above it are penalised, and their
    # maximum gives the true cut. The same tokens and logits as `candidates` on a
    # penalised copy, without writing 262k logits per draw.

    def _min_p_without_copy(self, banned: list) -> bool:
        return (
            self.temperature > 0
            and self.log_min_p > -math.inf
            and self.repeat_penalty >= 1
            and not banned
        )

    def _min_p_bound(self, top_id: int, top: np.float32, recent: set) -> np.float32:
        """The min-p cut of the raw row that keeps every candidate of the penalised one."""
        if top_id in recent:
            top = _penalty_on(np.float32(top), self.repeat_penalty)
        return np.float32(float(top) + self.temperature * self.log_min_p)

    def _min_p_survivors(self, row: np.ndarray, recent: set):
        """(ids, penalised logits, penalised maximum) of one row's min-p candidates."""
        top_id = int(np.argmax(row))
        kept = self._at_least(row, self._min_p_bound(top_id, row[top_id], recent))
        return self._penalise_survivors(kept, row[kept], float(row[top_id]), recent)

    def _penalise_survivors(self, kept, values, top: float, recent: set):
        """The survivors of the bound with their penalised logits, cut again at the true
        min-p cut when a recent token was among them."""
        if not recent or self.repeat_penalty == 1:
            return kept, values, top
        # a few survivors against a few recent tokens: a set beats np.isin's sort
        hit = np.fromiter((t in recent for t in kept.tolist()), np.bool_, len(kept))
        if not hit.any():
            return kept, values, top
        values[hit] = _penalty_on(values[hit], self.repeat_penalty)
        top = float(values.max())  # the penalised row's maximum is among them
        keep = values >= np.float32(top + self.temperature * self.log_min_p)
        return kept[keep], values[keep], top

    def _draw_rows_min_p(self, rows, us, recents) -> list[int]:
        """draw_rows with a min-p cut: one comparison of all rows against their bounds
        (see above), then each row's survivors. A penalty below 1 raises logits: a row
        with recent tokens then takes the one-row path."""
        k = len(rows)
        top_ids = np.argmax(rows, axis=1)
        tops = rows[np.arange(k), top_ids]
        penalty = self.repeat_penalty
        recent_sets = [set(r) if penalty != 1 else set() for r in recents]
        alone = {seq for seq in range(k) if penalty < 1 and recent_sets[seq]}
        cut = np.array(
            [self._min_p_bound(int(i), t, r) for i, t, r in zip(top_ids, tops, recent_sets)],
            dtype=np.float32,
        )
        mask = self._rows_mask[:k]
        np.greater_equal(rows, cut[:, None], out=mask)
        row_of, ids = _true_positions(mask)
        bounds = np.searchsorted(row_of, np.arange(k + 1))
        tokens = []
        for seq, u in enumerate(us):
            if seq in alone:
                tokens.append(self.draw(rows[seq], u, recent_sets[seq]))
                continue
            kept = ids[bounds[seq] : bounds[seq + 1]]
            survivors = self._penalise_survivors(
                kept, rows[seq, kept], float(tops[seq]), recent_sets[seq]
            )
            tokens.append(_pick(*self._ranked(*survivors), u))
        return tokens

    def _finish(self, ids, row, top: float, u: float) -> int:
        return _pick(*self._ranked(ids, row[ids], top), u)

    def _ranked(self, ids, values, top: float) -> tuple[np.ndarray, np.ndarray]:
        """Sort the candidates (ids and their logits), cut to top-k and top-p."""
        kept, weights = self._sorted_values(ids, values, top)
        if self.top_k and len(kept) > self.top_k:
            kept, weights = kept[: self.top_k], weights[: self.top_k]
        return self._keep_top_p(kept, weights, weights.sum())

    def _grow(self, k: int) -> None:
        if len(self._rows) < k:
            self._rows = np.empty((k, self.n_vocab), dtype=np.float32)
            self._rows_mask = np.empty((k, self.n_vocab), dtype=np.bool_)

    def _penalise_rows(self, rows: np.ndarray, recents: Sequence[Iterable[int]]) -> np.ndarray:
        """The rows with the repetition penalty (in this sampler's buffer), or `rows` itself
        when no row has a recent token to penalise."""
        recents = [set(r) for r in recents] if self.repeat_penalty != 1 else []
        if not any(recents):
            return rows
        out = self._rows[: len(rows)]
        np.copyto(out, rows)
        for seq, recent in enumerate(recents):
            penalise(rows[seq], recent, self.repeat_penalty, out[seq])
        return out

    def penalise(self, logits: np.ndarray, recent: Iterable[int]) -> np.ndarray:
        """This sampler's repetition penalty on `logits` (see `penalise`)."""
        return penalise(logits, recent, self.repeat_penalty, self._penalised)

    def candidates(self, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return (token ids, unnormalised probabilities), most likely first.

        Cuts work on the raw logits, where they mean the same as on scaled ones
        (min-p: l/T >= max/T + ln(min_p)  <=>  l >= max + T ln(min_p)), so the whole
        vocabulary is only compared and scanned, never scaled, exponentiated or sorted.
        """
        top = float(logits.max())
        if self.log_min_p > -math.inf:
            ids = self._at_least(logits, top + self.temperature * self.log_min_p)
        elif self.top_k:
            ids = self._at_least(logits, self._kth_largest(logits, self.top_k))
        else:
            return self._nucleus_without_cut(logits, top)
        return self._ranked(ids, logits[ids], top)  # min-p may keep more than top-k

    def _kth_largest(self, values: np.ndarray, k: int) -> float:
        np.copyto(self._scratch, values)
        self._scratch.partition(self.n_vocab - k)
        return float(self._scratch[self.n_vocab - k])

    def _at_least(self, values: np.ndarray, threshold: float) -> np.ndarray:
        np.greater_equal(values, np.float32(threshold), out=self._mask)
        return np.flatnonzero(self._mask)

    def _sorted_weights(self, logits, ids, top) -> tuple[np.ndarray, np.ndarray]:
        return self._sorted_values(ids, logits[ids], top)

    def _sorted_values(self, ids, values, top) -> tuple[np.ndarray, np.ndarray]:
        order = np.lexsort((ids, -values))  # most likely first, then lowest id
        ids = ids[order]
        weights = np.exp((values[order].astype(np.float64) - top) / self.temperature)
        return ids, weights

    def _keep_top_p(self, ids, weights, total) -> tuple[np.ndarray, np.ndarray]:
        if self.top_p >= 1.0:
            return ids, weights
        cumulative = np.cumsum(weights)
        keep = int(np.searchsorted(cumulative, self.top_p * total, side="left")) + 1
        return ids[:keep], weights[:keep]

    def _nucleus_without_cut(self, logits: np.ndarray, top: float):
        """top-p (or no filter at all) over the whole vocabulary, without a full sort."""
        exp_shifted = np.subtract(logits, np.float32(top), out=self._scratch)
        exp_shifted *= np.float32(1.0 / self.temperature)
        np.exp(exp_shifted, out=exp_shifted)
        total = float(exp_shifted.sum(dtype=np.float64))
        if self.top_p >= 1.0:  # plain temperature sampling: every token is a candidate
            return np.arange(self.n_vocab), exp_shifted.astype(np.float64)
        look = _TOP_P_FIRST_LOOK
        while True:  # the scratch buffer is reused from here on; `total` is all we keep
            look = min(look, self.n_vocab)
            threshold = self._kth_largest(logits, look)
            ids, weights = self._sorted_weights(logits, self._at_least(logits, threshold), top)
            if look == self.n_vocab or weights.sum() >= self.top_p * total:
                return self._keep_top_p(ids, weights, total)
            look *= 4


def _true_positions(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.nonzero of a (k, n) boolean array, row-major, 4x faster when few are true: it
    first finds the 8-byte words holding a True, then the Trues inside them."""
    k, n = mask.shape
    if n % 8 or not mask.flags.c_contiguous:
        return np.nonzero(mask)
    row, word = np.nonzero(mask.view(np.uint64))
    inner_row, offset = np.nonzero(mask.reshape(k, n // 8, 8)[row, word])
    return row[inner_row], word[inner_row] * 8 + offset


def _ban(logits: np.ndarray, banned: Iterable[int], out: np.ndarray) -> np.ndarray:
    """`logits` with the banned tokens at -inf (in `out`, a buffer of the same shape, unless
    nothing is banned)."""
    banned = list(banned)
    if not banned:
        return logits
    if logits is not out:
        np.copyto(out, logits)
    out[banned] = -np.inf
    return out


def _pick(ids: np.ndarray, weights: np.ndarray, u: float) -> int:
    """Inverse-CDF pick: the first candidate whose cumulative weight passes u * total."""
    cumulative = np.cumsum(weights)
    index = int(np.searchsorted(cumulative, u * cumulative[-1], side="right"))
    return int(ids[min(index, len(ids) - 1)])


def penalise(
    logits: np.ndarray, recent: Iterable[int], penalty: float, out: np.ndarray
) -> np.ndarray:
    """The repetition penalty, as llama.cpp applies it: a recent token's logit is divided
    by the penalty when positive and multiplied when negative. Returns `logits` itself
    when nothing changes, else a penalised copy written into `out` (same shape)."""
    ids = np.fromiter(set(recent), dtype=np.int64) if penalty != 1 else ()
    if len(ids) == 0:
        return logits
    np.copyto(out, logits)
    out[ids] = _penalty_on(out[ids], penalty)
    return out


def _penalty_on(values, penalty: float):
    """Logits (float32, an array or one) with the repetition penalty: divided by it when
    positive, multiplied when not."""
    return np.where(values > 0, values / penalty, values * penalty)


class Mixture:
    """The ensemble baseline's distribution: weight*P_base + (1-weight)*P_aligned.

    Both distributions are taken at the sampling temperature (1 when greedy), and the
    mixture is returned as log-probabilities, a logits row for a Sampler at temperature 1.
    """

    def __init__(self, n_vocab: int, weight_base: float, temperature: float):
        self.weights = (weight_base, 1.0 - weight_base)
        self.inverse_temperature = np.float32(1.0 / temperature if temperature > 0 else 1.0)
        # weight * probability, per model, kept for base_share()
        self._weighted = (np.empty(n_vocab, dtype=np.float32), np.empty(n_vocab, dtype=np.float32))
        self._mixed = np.empty(n_vocab, dtype=np.float32)

    def log_probs(self, logits_base: np.ndarray, logits_aligned: np.ndarray) -> np.ndarray:
        """Return the mixture's log-probabilities, shape (n_vocab,), float32 (own buffer).

        Inputs: float32 rows of shape (n_vocab,), not modified. Works in probability
        space (two softmaxes, a sum, a log): a quarter of the cost of logaddexp.
        """
        for weighted, logits, weight in zip(
            self._weighted, (logits_base, logits_aligned), self.weights, strict=True
        ):
            np.multiply(logits, self.inverse_temperature, out=weighted)
            weighted -= weighted.max()
            np.exp(weighted, out=weighted)
            weighted *= np.float32(weight / float(weighted.sum()))
        np.add(self._weighted[0], self._weighted[1], out=self._mixed)
        with np.errstate(divide="ignore"):  # a token no model can write gets -inf
            return np.log(self._mixed, out=self._mixed)

    def log_probs_rows(self, rows_base: np.ndarray, rows_aligned: np.ndarray) -> np.ndarray:
        """log_probs for k pairs of rows at once: inputs (k, n_vocab) float32, not
        modified; returns (k, n_vocab) float32, a new array. `base_shares` then reads
        the shares of the tokens drawn from it."""
        self._weighted_rows_kept = tuple(
            self._weighted_rows(rows, weight)
            for rows, weight in zip((rows_base, rows_aligned), self.weights, strict=True)
        )
        mixed = self._weighted_rows_kept[0] + self._weighted_rows_kept[1]
        with np.errstate(divide="ignore"):
            return np.log(mixed, out=mixed)

    def base_shares(self, tokens: Sequence[int]) -> list[float]:
        """For each row i of the last log_probs_rows, the base's share of tokens[i]."""
        index = (np.arange(len(tokens)), np.asarray(tokens))
        base, aligned = (w[index].astype(np.float64) for w in self._weighted_rows_kept)
        total = base + aligned
        return [float(b / s) if s > 0 else 0.0 for b, s in zip(base, total, strict=True)]

    def _weighted_rows(self, rows: np.ndarray, weight: float) -> np.ndarray:
        weighted = rows * self.inverse_temperature
        weighted -= weighted.max(axis=1, keepdims=True)
        np.exp(weighted, out=weighted)
        weighted *= (weight / weighted.sum(axis=1, dtype=np.float64))[:, None].astype(np.float32)
        return weighted

    def base_share(self, token_id: int) -> float:
        """Share of the last mixture's probability of token_id that came from the base."""
        base, aligned = (float(w[token_id]) for w in self._weighted)
        return base / (base + aligned) if base + aligned > 0 else 0.0

"""The fast decode loop against the straightforward reference loop, and lazy catch-up."""

import json

import numpy as np
import pytest

from baco_local import Pair
from baco_local.backend import Stream
from baco_local.cli import main
from baco_local.core.settings import GenerationSettings
from baco_local.decoding.reference import reference_tokens
from baco_local.pairs.prompt_formats import to_messages

ROUTERS = ("p-punc", "h-punc", "p-fc", "nudging", "random", "ensemble", "aligned", "base")


def fast_tokens(pair, prompt, settings):
    result = pair.stream(prompt, settings, ignore_end=True).run()
    return [(t.id, t.source) for t in result.tokens]


def test_fast_loop_matches_the_reference_token_by_token(tiny):
    with Pair.load(base=tiny.base, aligned=tiny.aligned, n_ctx=512) as pair:
        for router in ROUTERS:
            for seed, lead in ((1, 0), (2, 0), (3, 4)):
                settings = GenerationSettings(
                    router=router, seed=seed, max_tokens=40, lead=lead, speculative="off"
                )
                fast = fast_tokens(pair, "The cat", settings)
                ref = reference_tokens(pair.loaded, to_messages("The cat"), settings, pair.roles)
                assert fast == ref, (router, seed)


@pytest.mark.gemma
def test_fast_loop_matches_the_reference_on_gemma(gemma_path):
    # A context per role: the reference decodes each model alone, and on Gemma a decode
    # holding both models' tokens (one context) differs from that in rounding.
    with Pair.load(base=gemma_path, n_ctx=1024, one_context=False) as pair:
        for router, seed in (("p-punc", 1), ("nudging", 2), ("p-fc", 3)):
            settings = GenerationSettings(
                router=router, seed=seed, max_tokens=48, speculative="off"
            )
            fast = fast_tokens(pair, "Invent a new board game.", settings)
            ref = reference_tokens(
                pair.loaded, to_messages("Invent a new board game."), settings, pair.roles
            )
            assert fast == ref, router


def _stream(model_path, n_threads=2):
    from baco_local.backend import Model

    model = Model(model_path)
    return model, Stream(model, n_ctx=256, n_batch=64, n_threads=n_threads)


def test_deferred_stream_ends_with_the_same_context_and_logits_as_an_eager_one(tiny):
    model, eager = _stream(tiny.base)
    _, lazy = _stream(tiny.base)
    prompt = model.tokenize("The cat", add_bos=True)
    generated = model.tokenize(" runs to the sea and the sky is blue", add_bos=False)
    eager.start(prompt)
    lazy.start(prompt)
    eager.catch_up()
    lazy.catch_up()
    for token in generated:  # eager: read each token at once
        eager.push(token)
        eager.catch_up()
    for token in generated:  # lazy: let them wait, then catch up once
        lazy.push(token)
    assert len(lazy.pending) == len(generated)
    lazy.catch_up()
    assert lazy.tokens == eager.tokens == prompt + generated
    assert not lazy.pending
    assert np.array_equal(lazy.logits(), eager.logits())
    for stream in (eager, lazy):
        stream.close()
    model.close()


@pytest.mark.gemma
def test_deferred_catch_up_is_exact_on_gemma(gemma_path):
    model, eager = _stream(gemma_path)
    lazy = Stream(model, n_ctx=256, n_batch=64, n_threads=1)  # other thread count too
    prompt = model.tokenize("Once upon a time", add_bos=True)
    generated = model.tokenize(" there was a lighthouse on a cliff.", add_bos=False)
    for stream in (eager, lazy):
        stream.start(prompt)
        stream.catch_up()
    for token in generated:
        eager.push(token)
        eager.catch_up()
        lazy.push(token)
    lazy.catch_up()
    assert lazy.tokens == eager.tokens
    assert np.array_equal(lazy.logits(), eager.logits())
    for stream in (eager, lazy):
        stream.close()
    model.close()


def test_bench_json_has_the_promised_keys(capsys, tiny):
    code = main(
        [
            "bench",
            "--base",
            str(tiny.base),
            "--aligned",
            str(tiny.aligned),
            "--max-tokens",
            "16",
            "--repeats",
            "1",
            "--routers",
            "p-punc,nudging",
            "--json",
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    collab = {"p-punc", "nudging", "p-punc (on)", "nudging (on)"}  # speculation off and on
    assert set(report["tokens_per_second"]) == {"aligned", "base"} | collab
    assert set(report["ratio_to_aligned"]) == collab
    for name in ("p-punc (on)", "nudging (on)"):
        spec = report["speculative"][name]
        assert spec["mean_run"] >= 1 and 0 <= spec["acceptance"] <= 1
    assert "p-punc" not in report["speculative"]  # no runs drafted without speculation
    assert report["draft_costs"]["aligned_decode_ms"] > 0
    assert set(report["ttft_seconds"]) >= {"aligned", "p-punc"}
    assert all(0 <= v <= 1 for v in report["routing_share"].values())
    assert report["peak_rss_mb"] > 0
    assert report["naive"]["tokens_per_second"] > 0
    assert report["memory"]["growth_mb"] < 64
    for router, ratio in report["ratio_to_aligned"].items():
        expected = report["tokens_per_second"][router] / report["tokens_per_second"]["aligned"]
        assert ratio == pytest.approx(expected, rel=1e-2)


def test_bench_rejects_bad_options(capsys, tiny):
    code = main(["bench", "--base", str(tiny.base), "--routers", "nope"])
    assert code == 2 and "Unknown router" in capsys.readouterr().err
    code = main(["bench", "--base", str(tiny.base), "--lead", "-1"])
    assert code == 2 and "lead -1 is out of range" in capsys.readouterr().err


def test_bench_refuses_a_router_the_pair_cannot_run_before_measuring(capsys, tiny):
    args = ["bench", "--base", str(tiny.base), "--aligned", str(tiny.small_vocab)]
    code = main([*args, "--routers", "ensemble", "--max-tokens", "4", "--repeats", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "needs one vocabulary" in err
    assert "warming up" not in err and "repeat 1/1" not in err  # nothing was measured


@pytest.mark.parametrize("aligned", ["aligned", "small_vocab"])
def test_bench_answers_and_word_level_keys(capsys, tiny, aligned):
    code = main(
        [
            "bench",
            "--base",
            str(tiny.base),
            "--aligned",
            str(getattr(tiny, aligned)),
            "--max-tokens",
            "8",
            "--repeats",
            "1",
            "--answers",
            "2",
            "--json",
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    answers = report["answers"]["routers"]["p-punc"]
    assert report["answers"]["n"] == 2
    assert answers["batched_tokens_per_second"] > 0 and answers["sequential_tokens_per_second"] > 0
    assert answers["ratio"] == pytest.approx(
        answers["batched_tokens_per_second"] / answers["sequential_tokens_per_second"], rel=1e-2
    )
    assert 0 <= answers["batched_outside_share"] <= 1
    assert set(report["chars_per_second"]) == {"aligned", "base", "p-punc", "p-punc (on)"}
    assert report["scheduler"]  # the plan the loop learned is recorded
    for kind in report["scheduler"].values():
        assert kind["plan"] in ("side-by-side", "one-after-the-other")
    if aligned == "small_vocab":
        assert report["word_level"] and report["naive"] is None
        handover = report["handover"]["p-punc"]
        assert handover["handovers"] > 0 and 0 <= handover["rollback_share"] <= 1
    else:
        assert not report["word_level"] and report["naive"]["tokens_per_second"] > 0

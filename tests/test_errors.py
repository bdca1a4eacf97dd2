"""Bad input: one clear message naming the problem and the fix, a non-zero exit, no traceback."""

import pytest
from gguf_factory import OTHER_VOCAB_DIFF_ID

from baco_local import Pair
from baco_local.cli import main
from baco_local.errors import (
    ModelFileError,
    PromptError,
    SettingsError,
    VocabularyMismatchError,
)


def run_cli(capsys, *args):
    code = main(["run", *args])
    out, err = capsys.readouterr()
    return code, out, err


def tiny_args(tiny):
    return ["--base", str(tiny.base), "--aligned", str(tiny.aligned), "--ctx", "512"]


def assert_clean_error(code, err, *needles):
    assert code == 2
    assert err.startswith("baco: error: ") and "hint:" in err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err


def test_missing_file(capsys, tmp_path):
    code, _, err = run_cli(capsys, "hi", "--base", str(tmp_path / "nope.gguf"))
    assert_clean_error(code, err, "not found", "nope.gguf")


def test_directory_instead_of_a_file(capsys, tmp_path):
    code, _, err = run_cli(capsys, "hi", "--base", str(tmp_path))
    assert_clean_error(code, err, "is a directory")


def test_file_that_is_not_gguf(capsys, tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_text("this is not a model")
    code, _, err = run_cli(capsys, "hi", "--base", str(fake))
    assert_clean_error(code, err, "not a GGUF")


def test_truncated_gguf(capsys, tiny, tmp_path):
    data = tiny.base.read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError) as error:
        Pair.load(base=cut)
    assert "Cannot load" in str(error.value) and "truncated" in error.value.hint
    code, _, err = run_cli(capsys, "hi", "--base", str(cut))
    assert_clean_error(code, err, "cut.gguf")


def test_the_vocabulary_check_names_both_files_and_the_token(tiny):
    from baco_local.backend import Model
    from baco_local.pairs.loading import check_same_vocabulary

    base, other = Model(tiny.base, vocab_only=True), Model(tiny.other_vocab, vocab_only=True)
    try:
        with pytest.raises(VocabularyMismatchError) as error:
            check_same_vocabulary(base, other)
    finally:
        base.close()
        other.close()
    message = str(error.value)
    assert f"token {OTHER_VOCAB_DIFF_ID}" in message
    assert str(tiny.base) in message and str(tiny.other_vocab) in message
    assert "word by word" in message  # what such a pair does instead


def test_pair_with_fewer_tokens_runs_word_by_word(capsys, tiny):
    code, out, err = run_cli(
        capsys,
        "hi",
        "--base",
        str(tiny.base),
        "--aligned",
        str(tiny.small_vocab),
        "--max-tokens",
        "8",
        "--seed",
        "1",
    )
    assert code == 0 and out.strip()
    assert "(cross-tokenizer)" in err  # the summary line names the pair honestly


def test_aligned_model_without_chat_template_needs_a_named_format(capsys, tiny):
    code, _, err = run_cli(capsys, "hi", "--base", str(tiny.aligned), "--aligned", str(tiny.base))
    assert_clean_error(code, err, "no chat template", "--aligned-format")
    code, out, err = run_cli(
        capsys,
        "hi",
        "--base",
        str(tiny.aligned),
        "--aligned",
        str(tiny.base),
        "--aligned-format",
        "transcript",
        "--max-tokens",
        "4",
        "--seed",
        "1",
    )
    assert code == 0
    assert "no chat template" in err and "'transcript'" in err  # said, not silent


def test_unknown_router_lists_the_valid_ones(capsys, tiny):
    code, _, err = run_cli(capsys, "hi", *tiny_args(tiny), "--router", "pp-punc")
    assert_clean_error(code, err, "Unknown router", "p-punc", "nudging")


def test_gamma_out_of_range(capsys, tiny):
    code, _, err = run_cli(capsys, "hi", *tiny_args(tiny), "--router", "p", "--gamma", "1.7")
    assert_clean_error(code, err, "out of range", "[0, 1]")


def test_non_positive_max_tokens(capsys, tiny):
    code, _, err = run_cli(capsys, "hi", *tiny_args(tiny), "--max-tokens", "0")
    assert_clean_error(code, err, "max_tokens", "at least 1")


def test_zero_parallel_is_refused_not_taken_for_the_default(capsys, tiny):
    code, _, err = run_cli(capsys, "hi", *tiny_args(tiny), "--parallel", "0")
    assert_clean_error(code, err, "parallel", "between 1 and")


def test_prompt_longer_than_the_context(capsys, tiny):
    long_prompt = "the cat " * 400
    code, _, err = run_cli(capsys, long_prompt, *tiny_args(tiny))
    assert_clean_error(code, err, "context holds", "--ctx")
    with pytest.raises(PromptError):
        with Pair.load(base=tiny.base, aligned=tiny.aligned, n_ctx=256) as pair:
            pair.generate(long_prompt)


def test_unknown_prompt_format(capsys, tiny):
    code, _, err = run_cli(capsys, "hi", *tiny_args(tiny), "--aligned-format", "chatm")
    assert_clean_error(code, err, "Unknown prompt format", "chatml")


def test_raw_mode_rejects_a_conversation(tiny_pair):
    with pytest.raises(PromptError, match="one prompt"):
        tiny_pair.generate(
            [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"},
            ],
            raw=True,
        )


# --- the Python API: misuse is a BacoError that names it, never a bare TypeError ---------

API_MISUSE = {
    "no prompt": ((None,), {}, PromptError, "not NoneType"),
    "a number": ((5,), {}, PromptError, "not int"),
    "one message, not a list": (({"role": "user", "content": "hi"},), {}, PromptError, "not dict"),
    "a list of strings": ((["Hi", "there"],), {}, PromptError, "Message 0 of the prompt"),
    "a message without content": (([{"role": "user"}],), {}, PromptError, "not a message"),
    "content that is not text": (
        ([{"role": "user", "content": None}],),
        {},
        PromptError,
        "content None, not text",
    ),
    "settings as a dict": (("Hi",), {"settings": {"seed": 1}}, SettingsError, "not dict"),
    "a temperature that is a word": (
        ("Hi",),
        {"temperature": "hot"},
        SettingsError,
        "'hot' is not a number",
    ),
    "max_tokens as text": (("Hi",), {"max_tokens": "5"}, SettingsError, "max_tokens '5'"),
}


@pytest.mark.parametrize("case", API_MISUSE)
def test_api_misuse_is_a_clear_error(tiny_pair, case):
    args, kwargs, kind, words = API_MISUSE[case]
    with pytest.raises(kind) as caught:
        tiny_pair.generate(*args, **kwargs)
    assert words in caught.value.message and caught.value.hint


def test_api_requests_are_checked_where_they_are_made(tiny_pair):
    from baco_local import Request

    with pytest.raises(SettingsError, match="settings must be a GenerationSettings"):
        Request("a", "Hi", "notsettings")
    with pytest.raises(SettingsError, match="answer_all takes Requests, not str"):
        list(tiny_pair.answer_all("Hi"))
    # one stop string is taken as OpenAI's API takes it
    result = tiny_pair.generate("The cat", stop="e", max_tokens=8, seed=1)
    assert result.settings.stop == ("e",)


def test_aligned_without_base_is_refused_not_ignored():
    with pytest.raises(SettingsError, match="needs base= too"):
        Pair.load(aligned="in-context")


def test_a_seed_with_no_room_for_n_answers_names_the_seed_given(capsys, tiny):
    code = main(["run", "hi", "--base", str(tiny.base), "--seed", str(2**63 - 1), "-n", "2"])
    err = capsys.readouterr().err
    assert code == 2 and f"seed {2**63 - 1} leaves no room for 2 answers" in err
    assert str(2**63) not in err  # not a seed the user never typed


def test_a_prompt_may_be_any_iterable_of_messages(tiny_pair):
    from baco_local import GenerationSettings, Message, Request

    messages = ({"role": "user", "content": text} for text in ["The cat"])  # a generator
    assert tiny_pair.generate(messages, max_tokens=2, seed=1).stats.tokens > 0
    with pytest.raises(PromptError, match="content None, not text"):
        Request("a", (Message("user", None),), GenerationSettings(seed=1))

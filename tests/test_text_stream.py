"""Text assembly: UTF-8 split across tokens, and stop strings held back then dropped."""

import re

from baco_local.core.text_stream import StopLine, TextStream

SPEAKER = StopLine("### ", re.compile(r"### [A-Z][a-z]+:"))


def feed_all(stream, pieces):
    out = []
    for i, piece in enumerate(pieces):
        out.extend(stream.feed(i, piece))
        if stream.stopped_by:
            break
    else:
        out.extend(stream.flush())
    return out


def test_a_character_split_between_tokens_is_released_whole():
    e_acute = "é".encode()
    out = feed_all(TextStream(), [b"caf", e_acute[:1], e_acute[1:], b"!"])
    assert out == [(0, "caf"), (1, ""), (2, "é"), (3, "!")]


def test_text_that_may_start_a_stop_string_is_held_until_it_cannot():
    stream = TextStream(("\nUser:",))
    assert stream.feed(0, b"Hi") == [(0, "Hi")]
    assert stream.feed(1, b"\n") == []  # could begin "\nUser:"
    assert stream.feed(2, b"Us") == []
    assert stream.feed(3, b"ual") == [(1, "\n"), (2, "Us"), (3, "ual")]
    assert stream.text == "Hi\nUsual"


def test_a_completed_stop_string_is_dropped_with_everything_after_it():
    out = feed_all(TextStream(("\nUser:",)), [b"Bye.", b"\nUs", b"er: more"])
    assert out == [(0, "Bye.")]
    stream = TextStream(("STOP",))
    out = feed_all(stream, [b"abcST", b"OPxyz"])
    assert out == [(0, "abc")] and stream.stopped_by == "STOP" and stream.text == "abc"


def test_without_stops_everything_is_released_at_once():
    stream = TextStream()
    assert stream.feed(0, b"a\n") == [(0, "a\n")]


def test_a_stop_line_is_held_until_complete_then_dropped_with_the_rest():
    stream = TextStream(stop_lines=(SPEAKER,))
    assert stream.feed(0, b"Hello.") == [(0, "Hello.")]
    assert stream.feed(1, b"\n###") == []  # a line that may be a speaker heading waits
    assert stream.feed(2, b" Guest") == []
    assert stream.feed(3, b":\nHi") == []
    assert stream.stopped_by == "line" and stream.text == "Hello."


def test_a_heading_that_is_not_a_speaker_line_is_released():
    stream = TextStream(stop_lines=(SPEAKER,))
    out = feed_all(stream, [b"Plan", b"\n### Step one", b"\nMix it."])
    assert "".join(text for _, text in out) == "Plan\n### Step one\nMix it."
    assert stream.stopped_by is None


def test_an_unfinished_speaker_line_at_the_end_is_dropped():
    stream = TextStream(stop_lines=(SPEAKER,))
    out = feed_all(stream, [b"Done.", b"\n### Guest:"])
    assert "".join(text for _, text in out) == "Done."


def test_a_stop_line_with_sources_applies_only_to_lines_those_sources_wrote():
    base_only = StopLine(SPEAKER.prefix, SPEAKER.pattern, frozenset({"base"}))

    def run(pieces_and_sources):
        stream = TextStream(stop_lines=(base_only,), source_of=lambda item: item[1])
        out = []
        for i, (piece, source) in enumerate(pieces_and_sources):
            out.extend(stream.feed((i, source), piece))
        out.extend(stream.flush())
        return "".join(text for _, text in out), stream.stopped_by

    heading = [(b"Plan", "aligned"), (b"\n### Notes:", "aligned"), (b"\nMix.", "aligned")]
    assert run(heading) == ("Plan\n### Notes:\nMix.", None)  # the aligned model's heading
    invented = [
        (b"Plan", "aligned"),
        (b"\n###", "aligned"),
        (b" Guest:", "base"),
        (b"\nHi", "base"),
    ]
    assert run(invented) == ("Plan", "line")

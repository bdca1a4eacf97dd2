"""What every loop does before its first token: each role's prompt, checked against its
context, and the answer's text stream with the stop strings of both formats."""

from __future__ import annotations

from ..core.routers import ALIGNED, BASE
from ..core.settings import GenerationSettings
from ..core.text_stream import StopLine, TextStream
from ..errors import PromptError
from ..pairs.conversation_fit import dropped_note, fit_conversation
from ..pairs.loading import LoadedPair, Prompt
from ..pairs.prompt_formats import Message


def prepare_prompts(
    pair: LoadedPair, messages: tuple[Message, ...], raw: bool, max_tokens: int
) -> tuple[dict[str, Prompt], str | None]:
    """Each role's prompt, checked against the context size before any work, and a note
    when the oldest turns of a long conversation had to leave the prompt (None if not).

    A prompt fits when it leaves room for the answer: max_tokens, or half the context
    if that is less.
    """

    def prompts_for(conversation) -> dict[str, Prompt]:
        return {role: pair.prepare(role, conversation, raw=raw) for role in (BASE, ALIGNED)}

    def room_left(prompts: dict[str, Prompt]) -> bool:
        return all(
            len(p.tokens) + min(max_tokens, pair.streams[role].n_ctx // 2)
            <= pair.streams[role].n_ctx
            for role, p in prompts.items()
        )

    note = None
    prompts = prompts_for(messages)
    if not raw and len(messages) > 1 and not room_left(prompts):
        kept, dropped = fit_conversation(messages, lambda c: room_left(prompts_for(c)))
        if dropped:
            prompts = prompts_for(kept)
            note = dropped_note(dropped, min(s.n_ctx for s in pair.streams.values()))
    for role, prompt in prompts.items():
        size, n_ctx = len(prompt.tokens), pair.streams[role].n_ctx
        if size >= n_ctx:
            raise PromptError(
                f"The prompt for the {role} model is {size} tokens but the context holds {n_ctx}.",
                f"shorten the prompt or raise --ctx (n_ctx in Python) above {size + max_tokens}",
            )
    return prompts, note


def text_stream_for(
    pair: LoadedPair, settings: GenerationSettings, raw: bool, ignore_end: bool
) -> TextStream:
    """The answer's text stream: the user's stop strings, and each format's stops.

    A format's stop lines (a transcript's invented speakers) apply to lines that its
    own role helped write: an instruct model's "### Notes:" heading stays.
    """
    if ignore_end:
        return TextStream()
    if raw:
        return TextStream(tuple(settings.stop))
    formats = {BASE: pair.base_format, ALIGNED: pair.aligned_format}
    stops = tuple(settings.stop) + tuple(s for f in formats.values() for s in f.stop)
    owners: dict[StopLine, set[str]] = {}
    for role, fmt in formats.items():
        for line in fmt.stop_lines:
            owners.setdefault(line, set()).add(role)
    lines = tuple(line._replace(sources=frozenset(r)) for line, r in owners.items())
    return TextStream(stops, lines, source_of=lambda event: event.source)

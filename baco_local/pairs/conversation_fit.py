"""A conversation that no longer fits the context: the oldest turns leave the prompt.

Chat users expect a long conversation to go on, as it does in Ollama and LM Studio.
When the prompt (and room for the answer) outgrows a model's context, whole turns are
left out of the prompt, oldest first: a user message and the assistant's answer to it
go together, the system prompt always stays, and so does the last user message. What
is left out is only left out of the prompt; sessions keep every message.

Pure: whether a conversation fits is a callable the caller supplies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .prompt_formats import Message


def fit_conversation(
    messages: Sequence[Message], fits: Callable[[tuple[Message, ...]], bool]
) -> tuple[tuple[Message, ...], int]:
    """The longest tail of the conversation that fits, and how many messages were left out.

    The system message (if first) is always kept, and the last message (the user's
    request) too; turns are dropped from the oldest. If only the system message and the
    last request remain and they still do not fit, they are returned as they are (the
    caller reports that the prompt is too long).
    """
    messages = tuple(messages)
    system = messages[:1] if messages and messages[0].role == "system" else ()
    turns = messages[len(system) :]
    dropped = 0
    while True:
        candidate = system + turns[dropped:]
        if fits(candidate) or len(turns) - dropped <= 1:
            return candidate, dropped
        dropped += 1
        # a turn starts with a user message: never keep an answer without its question
        while dropped < len(turns) - 1 and turns[dropped].role != "user":
            dropped += 1


def dropped_note(dropped: int, n_ctx: int) -> str:
    """What the result's notes say when turns were left out."""
    what = "message" if dropped == 1 else "messages"
    return (
        f"The conversation no longer fits the context ({n_ctx} tokens): the {dropped} oldest "
        f"{what} were left out of the prompt (the system prompt stays; nothing is deleted)."
    )

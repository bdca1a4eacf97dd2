"""How a conversation becomes prompt text for one model.

Each role gets the conversation in its own format; generated tokens are then appended
to both. Formats:

- `template`: the chat template stored in the GGUF (`tokenizer.chat_template`),
  rendered with llama-cpp-python's Jinja2 formatter. The aligned model's default.
- `transcript`: a plain transcript (`### User:` / `### Assistant:` headings), the base
  model's default: base models continue documents, and a transcript is one.
- `in-context`: the transcript after a fixed alignment preamble (a system description
  and example exchanges, in the style of URIAL), so a *base* model answers like an
  assistant. This is how a base model with no aligned partner plays the aligned role.
- `chatml`, `gemma`, `llama3`, `tulu`: common chat formats, for files that lack a template.
- a path to a `.jinja` file: a chat template of your own.
- `raw`: the prompt text unchanged (plain completion); used by `--raw`.

Every format ends right after the assistant header with a newline, so the first
generated token reads the same in every role.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.text_stream import StopLine
from ..errors import PromptError, unknown_name_error

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Message:
    role: str  # "system", "user" or "assistant"
    content: str

    def __post_init__(self):
        if not isinstance(self.role, str) or self.role not in ROLES:
            raise PromptError(
                f"Unknown message role {self.role!r}.", f"use one of {', '.join(ROLES)}"
            )
        if not isinstance(self.content, str):
            raise PromptError(
                f"A {self.role} message has content {self.content!r}, not text.",
                "give each message's content as a string",
            )


def to_messages(
    prompt: str | Sequence[Message | Mapping[str, str]], system: str | None = None
) -> tuple[Message, ...]:
    """Normalise a prompt string or a list of messages (objects or role/content dicts)."""
    if isinstance(prompt, str):
        messages = [Message("user", prompt)]
    elif isinstance(prompt, Iterable) and not isinstance(prompt, (bytes, bytearray, Mapping)):
        messages = [_message(m, i) for i, m in enumerate(prompt)]
    else:
        raise PromptError(
            f"A prompt must be a string or a list of messages, not {type(prompt).__name__}.",
            'give "text", or [{"role": "user", "content": "text"}, ...]',
        )
    if system:
        messages = [m for m in messages if m.role != "system"]
        messages.insert(0, Message("system", system))
    messages = _merge_repeated_roles(messages)
    if not messages or messages[-1].role != "user":
        raise PromptError(
            "The conversation must end with a user message.",
            "add the user's next message at the end of the list",
        )
    return tuple(messages)


def _message(item, index: int) -> Message:
    """A Message from a Message or a {"role", "content"} mapping, or a PromptError."""
    if isinstance(item, Message):
        return item
    if isinstance(item, Mapping) and "role" in item and "content" in item:
        return Message(item["role"], item["content"])
    raise PromptError(
        f"Message {index} of the prompt is {item!r}, not a message.",
        'give each message as {"role": "user", "content": "text"} (or a Message)',
    )


def _merge_repeated_roles(messages: list[Message]) -> list[Message]:
    """Join consecutive messages of one role (a user who sent twice because an answer
    came back empty): many chat templates refuse turns that do not alternate."""
    merged: list[Message] = []
    for m in messages:
        if merged and merged[-1].role == m.role:
            merged[-1] = Message(m.role, f"{merged[-1].content}\n\n{m.content}")
        else:
            merged.append(m)
    return merged


@dataclass(frozen=True)
class PromptFormat:
    """A named way to render messages. `stop`: text that ends an answer in this format;
    `end_markers`: special tokens (as text) that end a turn in this format."""

    name: str
    render: Callable[[Sequence[Message]], str]
    stop: tuple[str, ...] = ()
    end_markers: tuple[str, ...] = ()
    description: str = ""
    uses_template: bool = False  # rendered from the GGUF's own chat template
    fixed_prefix: str = ""  # text every rendering starts with (a preamble worth caching)
    stop_lines: tuple[StopLine, ...] = ()  # whole lines that end an answer
    keep_out: tuple[str, ...] = ()  # texts its answers must not copy (the preamble's examples)


# --- transcript and in-context alignment ---------------------------------------------

_USER = "### User:\n"
_ASSISTANT = "### Assistant:\n"
# A transcript answer ends where the next heading of either speaker begins, or of any
# speaker a base model invents ("### Guest:"): a heading line that is one or two
# capitalised words and a colon. Answers' own headings rarely end with a colon.
_TRANSCRIPT_STOPS = ("\n### User:", "\n### Assistant:")
_SPEAKER_LINE = StopLine("### ", re.compile(r"### [A-Z][\w'.-]*( [A-Z][\w'.-]*)?:"))


def _render_transcript(messages: Sequence[Message], preamble: str = "") -> str:
    parts = [preamble] if preamble else []
    for m in messages:
        if m.role == "system":
            parts.append(f"{m.content.strip()}\n\n")
        elif m.role == "user":
            parts.append(f"{_USER}{m.content.strip()}\n\n")
        else:
            parts.append(f"{_ASSISTANT}{m.content.strip()}\n\n")
    parts.append(_ASSISTANT)
    return "".join(parts)


# The alignment preamble. Written for baco-local: a short description of the assistant,
# then example exchanges that show the register (direct, friendly, structured when it
# helps, honest about limits, and varied: names, explanation, verse, advice).
IN_CONTEXT_PREAMBLE = """\
The following is a conversation between a person and an AI assistant. The assistant \
is helpful, honest and friendly. It answers the question that was asked, directly and \
with care, in clear English. It uses short paragraphs or lists when they make an answer \
easier to read, it gives concrete examples, and when it does not know something it says \
so instead of guessing.

### User:
Can you suggest three names for a small neighbourhood bakery?

### Assistant:
Here are three ideas, each with a different feel:

1. **Morning Crumb**: warm and simple, it suggests bread fresh out of the oven at dawn.
2. **The Rising Table**: a nod to dough rising and to sharing food with neighbours.
3. **Flour & Ember**: fits a bakery with a wood-fired oven.

### User:
Why does the sky look blue?

### Assistant:
Sunlight is a mix of every colour. When it passes through the atmosphere, the tiny gas \
molecules in the air scatter short wavelengths (blue and violet) much more strongly than \
long ones (red and orange). That scattered blue light reaches your eyes from every \
direction, so the whole sky looks blue. At sunset the light crosses far more air, most of \
the blue is scattered away before it reaches you, and the reds and oranges are left.

### User:
Write a two-line poem about rain on a tin roof.

### Assistant:
The roof keeps time in silver beats,
a drummer for the empty streets.

### User:
I have an exam in two days and I can't focus. Any advice?

### Assistant:
That is a stressful spot, but two days is enough to make real progress. A few things help:

- **Work in short blocks.** Study for 25 minutes, then rest for 5. Short blocks are easier \
to start and keep your attention fresh.
- **Test yourself.** Answer old questions or explain a topic out loud without notes; it \
shows you what you really know.
- **Put the phone in another room** while you study.
- **Sleep.** A rested brain remembers far more than a tired one.

Good luck, you can do this!

"""


def example_answers(preamble: str) -> tuple[str, ...]:
    """The assistant turns of a preamble's example exchanges."""
    turns = preamble.split(_ASSISTANT)[1:]
    return tuple(turn.split(_USER)[0].strip() for turn in turns)


def _render_in_context(messages: Sequence[Message]) -> str:
    system = [m for m in messages if m.role == "system"]
    rest = [m for m in messages if m.role != "system"]
    preamble = IN_CONTEXT_PREAMBLE
    if system:
        instruction = system[0].content.strip()
        preamble += f"(From here on, the assistant follows this instruction: {instruction})\n\n"
    return _render_transcript(rest, preamble)


# --- common chat formats, for GGUF files without a template ----------------------------


def _system_into_first_user(messages: Sequence[Message]) -> list[Message]:
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    out = [m for m in messages if m.role != "system"]
    if system and out:
        out[0] = Message(out[0].role, f"{system}\n\n{out[0].content}")
    return out


def _render_chatml(messages: Sequence[Message]) -> str:
    body = "".join(f"<|im_start|>{m.role}\n{m.content}<|im_end|>\n" for m in messages)
    return body + "<|im_start|>assistant\n"


def _render_gemma(messages: Sequence[Message]) -> str:
    turns = []
    for m in _system_into_first_user(messages):
        role = "model" if m.role == "assistant" else "user"
        turns.append(f"<start_of_turn>{role}\n{m.content}<end_of_turn>\n")
    return "".join(turns) + "<start_of_turn>model\n"


def _render_llama3(messages: Sequence[Message]) -> str:
    body = "".join(
        f"<|start_header_id|>{m.role}<|end_header_id|>\n\n{m.content}<|eot_id|>" for m in messages
    )
    return "<|begin_of_text|>" + body + "<|start_header_id|>assistant<|end_header_id|>\n\n"


def _render_tulu(messages: Sequence[Message]) -> str:
    body = []
    for m in messages:
        end = "<|endoftext|>\n" if m.role == "assistant" else "\n"
        body.append(f"<|{m.role}|>\n{m.content}{end}")
    return "".join(body) + "<|assistant|>\n"


def _render_raw(messages: Sequence[Message]) -> str:
    if len(messages) != 1:
        raise PromptError(
            "Raw mode takes one prompt, not a conversation.",
            "drop --raw (and --system) to chat, or pass a single prompt",
        )
    return messages[0].content


NAMED_FORMATS: dict[str, PromptFormat] = {
    f.name: f
    for f in (
        PromptFormat(
            "transcript",
            _render_transcript,
            stop=_TRANSCRIPT_STOPS,
            stop_lines=(_SPEAKER_LINE,),
            description="plain transcript with ### User: / ### Assistant: headings",
        ),
        PromptFormat(
            "in-context",
            _render_in_context,
            stop=_TRANSCRIPT_STOPS,
            stop_lines=(_SPEAKER_LINE,),
            description="alignment preamble with example exchanges, then the transcript",
            fixed_prefix=IN_CONTEXT_PREAMBLE,
            keep_out=example_answers(IN_CONTEXT_PREAMBLE),
        ),
        PromptFormat(
            "chatml",
            _render_chatml,
            end_markers=("<|im_end|>",),
            description="<|im_start|>role ... <|im_end|> (Qwen, SmolLM, many others)",
        ),
        PromptFormat(
            "gemma",
            _render_gemma,
            end_markers=("<end_of_turn>",),
            description="<start_of_turn>user ... <end_of_turn> (Gemma)",
        ),
        PromptFormat(
            "llama3",
            _render_llama3,
            end_markers=("<|eot_id|>",),
            description="<|start_header_id|>role<|end_header_id|> ... <|eot_id|> (Llama 3)",
        ),
        PromptFormat(
            "tulu",
            _render_tulu,
            end_markers=("<|endoftext|>",),
            description="<|user|> / <|assistant|> (OLMo 2, Tulu)",
        ),
        PromptFormat("raw", _render_raw, description="the prompt text unchanged"),
    )
}


def template_format(template: str, bos_token: str, eos_token: str, name: str = "template"):
    """A format that renders the given Jinja2 chat template (a GGUF's or a user's file)."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    try:
        formatter = Jinja2ChatFormatter(template, eos_token=eos_token, bos_token=bos_token)
    except Exception as e:  # a template this Jinja2 cannot compile
        raise PromptError(
            f"The chat template ({name}) cannot be read: {e}",
            "name another format for this model, e.g. --aligned-format chatml",
        ) from None

    def render(messages: Sequence[Message]) -> str:
        dicts = [{"role": m.role, "content": m.content} for m in messages]
        try:
            return formatter(messages=dicts).prompt
        except Exception as e:  # jinja2 raises many kinds; all mean the same to a user
            raise PromptError(
                f"The chat template ({name}) failed to render this conversation: {e}",
                "name another format for this model, e.g. --aligned-format chatml",
            ) from None

    return PromptFormat(
        name,
        render,
        end_markers=(eos_token,) if eos_token else (),
        description="the chat template stored in the model file",
        uses_template=True,
    )


def named_format(spec: str) -> PromptFormat:
    """A built-in format by name, or a template read from a `.jinja` file path."""
    if spec in NAMED_FORMATS:
        return NAMED_FORMATS[spec]
    path = Path(spec).expanduser()
    if path.suffix in (".jinja", ".j2", ".jinja2") or path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise PromptError(
                f"Cannot read chat template file {path}: {e.strerror}.", "check the path"
            ) from None
        return template_format(text, bos_token="", eos_token="", name=str(path))
    raise unknown_name_error(
        "prompt format", spec, [*NAMED_FORMATS, "template"], "baco routers --formats"
    )


def format_names() -> Iterable[tuple[str, str]]:
    yield "template", "the chat template stored in the model file (aligned default)"
    for f in NAMED_FORMATS.values():
        yield f.name, f.description

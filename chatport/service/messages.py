"""Request messages -> the plain dicts a chat template expects.

Content parts the served model cannot take are refused by name, never dropped. Files
become their text (``service/files.py``): with file parts, this runs in the prompt pool.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from chatport.protocol import requests as rq
from chatport.protocol.errors import InvalidRequestError
from chatport.service.files import FileWork, file_text
from chatport.service.images import ImagePlacer
from chatport.service.reasoning import ReasoningTemplate, split_history
from chatport.service.template import ChatTemplate

_PART_NAMES = {"image_url": "image", "input_audio": "audio", "file": "file"}


def _text_of(
    content: Any,
    index: int,
    model: str,
    images: ImagePlacer | None = None,
    transcripts: Iterator[str] | None = None,
    files: FileWork | None = None,
) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for j, part in enumerate(content):
        if isinstance(part, rq.TextPart):
            texts.append(part.text)
        elif isinstance(part, rq.RefusalPart):
            texts.append(part.refusal)
        elif isinstance(part, rq.FilePart):
            texts.append(file_text(part.file, f"messages[{index}].content[{j}]", images, files))
        elif isinstance(part, rq.ImagePart) and images is not None:
            texts.append(images.image_part(f"messages[{index}].content[{j}]"))
        elif isinstance(part, rq.AudioPart) and transcripts is not None:
            texts.append(next(transcripts))
        else:
            raise InvalidRequestError(
                f"Invalid content type. The model `{model}` does not accept {_PART_NAMES[part.type]} "
                f"input ('{part.type}' content parts); only text content is supported.",
                param=f"messages[{index}].content[{j}]",
                code="unsupported_content_type",
            )
    return "\n".join(texts)


def _arguments(raw: str) -> Any:
    # Tool-aware templates (Qwen, Llama) serialize arguments themselves with tojson.
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _calls_of(message: rq.AssistantMessage) -> list[dict[str, Any]]:
    """The assistant's calls as templates take them (a legacy function_call is one too)."""
    calls = []
    for call in message.tool_calls or []:
        if isinstance(call, rq.FunctionToolCall):
            fn = {"name": call.function.name, "arguments": _arguments(call.function.arguments)}
            calls.append({"id": call.id, "type": "function", "function": fn})
        else:
            calls.append({"id": call.id, "type": "custom", "custom": call.custom.model_dump()})
    if message.function_call is not None:
        fn = {"name": message.function_call.name, "arguments": _arguments(message.function_call.arguments)}
        calls.append({"id": f"call_{message.function_call.name}", "type": "function", "function": fn})
    return calls


def has_files(messages: list[Any]) -> bool:
    return any(isinstance(part, rq.FilePart) for m in messages if isinstance(m.content, list) for part in m.content)


def _assistant(
    entry: dict[str, Any], message: rq.AssistantMessage, reasoning: ReasoningTemplate | None, spoken: str | None
) -> None:
    """An assistant turn's content (its spoken answer's transcript, or its refusal, when it
    has none), calls and reasoning."""
    if spoken is not None and not entry["content"]:
        entry["content"] = spoken
    if message.refusal and not entry["content"]:
        entry["content"] = message.refusal
    if calls := _calls_of(message):
        entry["tool_calls"] = calls
    if reasoning is not None:
        thought, entry["content"] = split_history(entry["content"], reasoning.start, reasoning.end)
        if message.reasoning_content is not None or thought is not None:
            entry["reasoning_content"] = message.reasoning_content or thought


def to_template_messages(
    messages: list[Any],
    *,
    model: str,
    template: ChatTemplate,
    reasoning: ReasoningTemplate | None = None,
    images: ImagePlacer | None = None,
    transcripts: Sequence[str] | None = None,
    spoken: Mapping[int, str] | None = None,
    files: FileWork | None = None,
) -> list[dict[str, Any]]:
    """The messages as plain dicts. ``name`` goes to templates that render it; for those
    that do not, it is written before the content as ``name: content``. An assistant's
    ``refusal`` is what it said when it has no content. For a template that thinks, an
    assistant's reasoning (``reasoning_content``, or a think block sent back in its
    content) goes to the template as ``reasoning_content``, which templates drop from
    earlier turns (Qwen3 keeps it only within the current turn's tool calls).
    ``images``: the model sees images; each image part (and each PDF page without text)
    becomes a marker in the text, where the prompt builder puts the image (as llama.cpp's
    server does, so any template works, whether or not it knows image parts).
    ``transcripts``: what each ``input_audio`` part said, in order; a part becomes its
    transcript, as if typed. ``spoken``: message index -> transcript of an earlier spoken
    answer sent back as ``audio: {id}``, which stands for that answer's content.
    ``files``: the request's budget for reading file parts (a deadline and a stop flag)."""
    out: list[dict[str, Any]] = []
    heard = iter(transcripts) if transcripts is not None else None
    for i, message in enumerate(messages):
        role = message.role
        entry: dict[str, Any] = {"role": role, "content": _text_of(message.content, i, model, images, heard, files)}
        if role == "developer" and not template.knows_developer_role:
            entry["role"] = "system"
        name = getattr(message, "name", None)
        if name and template.renders_names:
            entry["name"] = name
        elif name:
            entry["content"] = f"{name}: {entry['content']}"
        if isinstance(message, rq.AssistantMessage):
            _assistant(entry, message, reasoning, (spoken or {}).get(i))
        elif isinstance(message, rq.ToolMessage):
            entry["tool_call_id"] = message.tool_call_id
        elif isinstance(message, rq.FunctionMessage):
            # The legacy function role is a tool result by another name.
            entry["role"] = "tool"
        out.append(entry)
    return out

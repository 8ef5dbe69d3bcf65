"""A Responses request as the chat request it asks for: the Responses API is a second
front over the chat service, so everything below the request's shape (prompts, tools and
their grammars, structured output, reasoning, images and files, limits) is the chat
path's, checked and run once.

``chat_body`` writes the chat body and remembers where each message came from, so that an
error the chat path finds in ``messages[3].content[0]`` is reported as the Responses
request's ``input[2].content[0]`` (``Origins.rename``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from chatport.protocol.errors import APIError, InvalidRequestError, unsupported_parameter
from chatport.protocol.response_requests import (
    AllowedToolsChoice,
    CreateResponseRequest,
    CustomTool,
    CustomToolCallItem,
    CustomToolCallOutputItem,
    FormatJSONObject,
    FormatJSONSchema,
    FunctionCallItem,
    FunctionCallOutputItem,
    FunctionTool,
    HostedToolChoice,
    InputFile,
    InputImage,
    InputItem,
    InputText,
    ItemReference,
    MessageItem,
    NamedTool,
    NamespaceTool,
    OutputText,
    ReasoningItem,
    Refusal,
    WebSearchTool,
)

LOGPROBS = "message.output_text.logprobs"


@dataclass
class Origins:
    """Where each chat message came from: ``instructions``, ``previous_response_id``, or an
    input path (``input[2]``, ``input`` for a string)."""

    of_message: list[str] = field(default_factory=list)
    of_tool: list[str] = field(default_factory=list)  # the chat body's tools[k], as the request's path

    _MESSAGE = re.compile(r"messages\[(\d+)\]")
    _RENAMES = (
        ("response_format.json_schema.schema", "text.format.schema"),
        ("response_format.json_schema", "text.format"),
        ("response_format", "text.format"),
        ("max_completion_tokens", "max_output_tokens"),
        ("reasoning_effort", "reasoning.effort"),
        ("web_search_options", "tools"),
        ("verbosity", "text.verbosity"),
        ("logprobs", "include"),
    )

    def rename(self, error: APIError) -> APIError:
        """The chat path's error, with its parameter (in ``param`` and in the message)
        named as the Responses request names it."""
        if not isinstance(error, InvalidRequestError) or error.param is None:
            return error
        renamed = self._path(error.param)
        if renamed == error.param:
            return error
        message = error.message.replace(f"'{error.param}'", f"'{renamed}'")
        return InvalidRequestError(message, param=renamed, code=error.code, status_code=error.status_code)

    def _path(self, param: str) -> str:
        found = self._MESSAGE.match(param)
        if found is not None:
            index = int(found.group(1))
            origin = self.of_message[index] if index < len(self.of_message) else "input"
            rest = param[found.end() :]
            return origin + rest if origin.startswith("input[") else origin
        if param == "messages":
            return "input"
        tool = re.match(r"tools\[(\d+)\]\.(function|custom)\.?(.*)", param)
        if tool is not None:
            index = int(tool.group(1))
            path = self.of_tool[index] if index < len(self.of_tool) else f"tools[{index}]"
            return path + (f".{tool.group(3)}" if tool.group(3) else "")
        for chat, ours in self._RENAMES:
            if param == chat or param.startswith(chat + ".") or param.startswith(chat + "["):
                return ours + param[len(chat) :]
        return param


def chat_body(
    request: CreateResponseRequest, history: list[dict[str, Any]], history_origin: str = "previous_response_id"
) -> tuple[dict[str, Any], Origins]:
    """The chat completion request a Responses request asks for; ``history``: the chat
    messages of the response it continues (``previous_response_id``) or of its
    ``conversation`` (``history_origin`` says which)."""
    _refuse_unsupported(request)
    origins = Origins()
    messages: list[dict[str, Any]] = []
    if request.instructions:
        messages.append({"role": "system", "content": request.instructions})
        origins.of_message.append("instructions")
    for message in history:
        messages.append(message)
        origins.of_message.append(history_origin)
    conversation_start = len(messages)
    _append_input(request, messages, origins)
    _check_outputs_have_calls(messages, origins, conversation_start)
    body: dict[str, Any] = {"model": request.model, "messages": messages, "store": False}
    if request.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True, "include_obfuscation": False}
    _copy(request, body, origins)
    return body, origins


def items_to_messages(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A conversation's stored items (input and output items alike) as chat messages;
    items that were no turn of the model's (a web search call) are left out."""
    turns = [item for item in items if item.get("type", "message") in _TURN_ITEMS]
    request = CreateResponseRequest.model_validate({"model": "-", "input": turns})
    messages: list[dict[str, Any]] = []
    _append_input(request, messages, Origins())
    return messages


_TURN_ITEMS = frozenset(
    {"message", "function_call", "function_call_output", "custom_tool_call", "custom_tool_call_output", "reasoning"}
)


def input_messages(body: dict[str, Any], origins: Origins) -> list[dict[str, Any]]:
    """The conversation a response continues with: the chat messages without instructions."""
    return [m for m, origin in zip(body["messages"], origins.of_message, strict=True) if origin != "instructions"]


def _refuse_unsupported(request: CreateResponseRequest) -> None:
    if request.context_management is not None:
        raise unsupported_parameter("context_management", "by this server yet")
    if request.prompt is not None:
        raise unsupported_parameter("prompt", "by this server: prompt templates live in OpenAI's dashboard")
    if request.input is None:
        raise InvalidRequestError("Missing required parameter: 'input'.", param="input", code="missing_required_parameter")


def _append_input(request: CreateResponseRequest, messages: list[dict[str, Any]], origins: Origins) -> None:
    if isinstance(request.input, str):
        messages.append({"role": "user", "content": request.input})
        origins.of_message.append("input")
        return
    reasoning: list[str] = []  # reasoning items wait for the assistant turn they belong to
    for i, item in enumerate(request.input or []):
        path = f"input[{i}]"
        if isinstance(item, ReasoningItem):
            reasoning += [part.text for part in item.content or []] or [part.text for part in item.summary]
            continue
        if isinstance(item, ItemReference):
            raise unsupported_parameter(f"{path}.id", "by this server yet: send the item itself, or use previous_response_id")
        message = _message_of(item, path)
        last = messages[-1] if messages else None
        if isinstance(item, FunctionCallItem | CustomToolCallItem):
            call = message["tool_calls"][0]
            if last is not None and last["role"] == "assistant" and origins.of_message[-1].startswith("input"):
                # The calls of one turn are one assistant message, with the text before them.
                last.setdefault("tool_calls", []).append(call)
                _take_reasoning(last, reasoning)
                continue
        if message["role"] == "assistant":
            _take_reasoning(message, reasoning)
        messages.append(message)
        origins.of_message.append(path)


def _take_reasoning(message: dict[str, Any], reasoning: list[str]) -> None:
    if reasoning:
        message["reasoning_content"] = (message.get("reasoning_content") or "") + "\n".join(reasoning)
        reasoning.clear()


def _message_of(item: InputItem, path: str) -> dict[str, Any]:
    if isinstance(item, MessageItem):
        return {"role": item.role, "content": _content(item, path)}
    if isinstance(item, FunctionCallItem):
        call = {"id": item.call_id, "type": "function", "function": {"name": item.name, "arguments": item.arguments}}
        return {"role": "assistant", "content": None, "tool_calls": [call]}
    if isinstance(item, CustomToolCallItem):
        call = {"id": item.call_id, "type": "custom", "custom": {"name": item.name, "input": item.input}}
        return {"role": "assistant", "content": None, "tool_calls": [call]}
    if isinstance(item, FunctionCallOutputItem | CustomToolCallOutputItem):
        return {"role": "tool", "tool_call_id": item.call_id, "content": _tool_output(item.output, path)}
    raise AssertionError(f"an input item the request model does not know: {item!r}")


def _content(item: MessageItem, path: str) -> str | list[dict[str, Any]]:
    if isinstance(item.content, str):
        return item.content
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(item.content):
        where = f"{path}.content[{j}]"
        if isinstance(part, InputText | OutputText):
            parts.append({"type": "text", "text": part.text})
        elif isinstance(part, Refusal):
            parts.append({"type": "refusal", "refusal": part.refusal})
        elif isinstance(part, InputImage):
            if part.image_url is None:
                raise unsupported_parameter(f"{where}.file_id", "by this server: send the image as image_url")
            parts.append({"type": "image_url", "image_url": {"url": part.image_url, "detail": part.detail}})
        elif isinstance(part, InputFile):
            if part.file_url is not None:
                raise unsupported_parameter(f"{where}.file_url", "by this server: send the file as file_data")
            file = {k: v for k, v in (("file_data", part.file_data), ("file_id", part.file_id), ("filename", part.filename)) if v}
            parts.append({"type": "file", "file": file})
    return parts


def _tool_output(output: str | list[Any], path: str) -> str | list[dict[str, Any]]:
    if isinstance(output, str):
        return output
    texts = []
    for j, part in enumerate(output):
        if not isinstance(part, InputText):
            raise unsupported_parameter(f"{path}.output[{j}]", "by this server: a tool's output is text")
        texts.append({"type": "text", "text": part.text})
    return texts or ""


def _check_outputs_have_calls(messages: list[dict[str, Any]], origins: Origins, start: int) -> None:
    """Every tool output answers a call made before it, and every call of the conversation
    has its output by the time the model answers again, as OpenAI requires."""
    open_calls: dict[str, str] = {}
    for index, message in enumerate(messages):
        if message["role"] == "tool" and open_calls.pop(message["tool_call_id"], None) is None and index >= start:
            call_id = message["tool_call_id"]
            raise InvalidRequestError(
                f"No tool call found for function call output with call_id {call_id}.", param=origins.of_message[index]
            )
        for call in message.get("tool_calls") or []:
            open_calls[call["id"]] = origins.of_message[index]
    if open_calls:
        call_id, origin = next(iter(open_calls.items()))
        raise InvalidRequestError(
            f"No tool output found for function call {call_id}.", param=origin if origin != "previous_response_id" else "input"
        )


_SAME_NAMES = (
    *("temperature", "top_p", "parallel_tool_calls", "prompt_cache_key", "prompt_cache_retention"),
    *("safety_identifier", "user", "service_tier", "moderation", "prompt_cache_options"),
)


def _copy(request: CreateResponseRequest, body: dict[str, Any], origins: Origins) -> None:
    """The sampling, tool and format options, under their chat names."""
    for name in _SAME_NAMES:
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    if request.max_output_tokens is not None:
        body["max_completion_tokens"] = request.max_output_tokens
    if LOGPROBS in (request.include or []):
        body["logprobs"] = True
        body["top_logprobs"] = request.top_logprobs or 0
    if request.reasoning is not None and request.reasoning.effort is not None:
        body["reasoning_effort"] = request.reasoning.effort
    _copy_text(request, body)
    _copy_tools(request, body, origins)


def _copy_text(request: CreateResponseRequest, body: dict[str, Any]) -> None:
    if request.text is not None:
        if request.text.verbosity is not None:
            body["verbosity"] = request.text.verbosity
        fmt = request.text.format
        if isinstance(fmt, FormatJSONSchema):
            spec: dict[str, Any] = {"name": fmt.name, "schema": fmt.schema_}
            spec |= {k: v for k, v in (("description", fmt.description), ("strict", fmt.strict)) if v is not None}
            body["response_format"] = {"type": "json_schema", "json_schema": spec}
        elif isinstance(fmt, FormatJSONObject):
            body["response_format"] = {"type": "json_object"}


def namespaces(request: CreateResponseRequest) -> dict[str, str]:
    """The namespace of each tool that is in one, by tool name."""
    return {t.name: tool.name for tool in request.tools or [] if isinstance(tool, NamespaceTool) for t in tool.tools}


def _flat_tools(request: CreateResponseRequest) -> list[tuple[str, Any]]:
    """The tools with those of namespaces in their place (the chat path knows no
    namespaces: a call's namespace is put back on its output item), each with its path."""
    flat: list[tuple[str, Any]] = []
    seen: set[str] = set()
    for i, tool in enumerate(request.tools or []):
        inner = (
            [(f"tools[{i}].tools[{j}]", t) for j, t in enumerate(tool.tools)]
            if isinstance(tool, NamespaceTool)
            else [(f"tools[{i}]", tool)]
        )
        for path, one in inner:
            name = getattr(one, "name", None)
            if name is not None and name in seen:
                raise InvalidRequestError(
                    f"Invalid '{path}.name': another tool is already named '{name}'.", param=f"{path}.name", code="invalid_value"
                )
            if name is not None:
                seen.add(name)
            flat.append((path, one))
    return flat


def _copy_tools(request: CreateResponseRequest, body: dict[str, Any], origins: Origins) -> None:
    tools = []
    for path, tool in _flat_tools(request):
        if isinstance(tool, FunctionTool | CustomTool):
            origins.of_tool.append(path)
        if isinstance(tool, FunctionTool):
            function: dict[str, Any] = {"name": tool.name}
            function |= {
                k: v
                for k, v in (("description", tool.description), ("parameters", tool.parameters), ("strict", tool.strict))
                if v is not None
            }
            tools.append({"type": "function", "function": function})
        elif isinstance(tool, CustomTool):
            custom: dict[str, Any] = {"name": tool.name}
            if tool.description is not None:
                custom["description"] = tool.description
            if tool.format is not None:
                custom["format"] = tool.format.model_dump(exclude_none=True)
            tools.append({"type": "custom", "custom": custom})
        elif isinstance(tool, WebSearchTool):
            body["web_search_options"] = _web_search_options(tool)
    if tools:
        body["tools"] = tools
    _copy_tool_choice(request, body)


def _copy_tool_choice(request: CreateResponseRequest, body: dict[str, Any]) -> None:
    choice = request.tool_choice
    if isinstance(choice, str):
        if "tools" in body:
            body["tool_choice"] = choice
    elif isinstance(choice, NamedTool):
        body["tool_choice"] = {"type": choice.type, choice.type: {"name": choice.name}}
    elif isinstance(choice, AllowedToolsChoice):
        allowed = [
            {"type": t.get("type"), t.get("type"): {"name": t.get("name")}} if t.get("type") in ("function", "custom") else t
            for t in choice.tools
        ]
        body["tool_choice"] = {"type": "allowed_tools", "allowed_tools": {"mode": choice.mode, "tools": allowed}}
    elif isinstance(choice, HostedToolChoice) and "web_search_options" not in body:
        raise InvalidRequestError(
            f"Tool choice '{choice.type}' not found in 'tools' parameter.", param="tool_choice", code="invalid_value"
        )


def _web_search_options(tool: WebSearchTool) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if tool.search_context_size is not None:
        options["search_context_size"] = tool.search_context_size
    if tool.user_location is not None:
        where = tool.user_location.model_dump(exclude_none=True, exclude={"type"})
        options["user_location"] = {"type": "approximate", "approximate": where}
    return options

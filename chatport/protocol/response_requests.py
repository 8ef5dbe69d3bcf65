"""Request models for POST /v1/responses, following responses-openapi.yaml.

As for chat (``protocol.requests``): top-level fields are closed, nested objects ignore
fields they do not know (the SDKs send output items back as input, with ``status``,
``id`` and other fields a request has no use for), and every union member is tagged
``Tag("FIELD=VALUE")`` so that errors name the parameter as OpenAI does (``input[2].content[0]``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from chatport.protocol.requests import (
    GrammarFormat,
    Probability,
    TextFormat,
    _Nested,
    _one_of,
    _quoted_list,
)

# --- input items -----------------------------------------------------------------------


class InputText(_Nested):
    type: Literal["input_text"]
    text: str


class InputImage(_Nested):
    type: Literal["input_image"]
    image_url: str | None = None
    file_id: str | None = None
    detail: Literal["auto", "low", "high"] = "auto"


class InputFile(_Nested):
    type: Literal["input_file"]
    file_data: str | None = None
    file_id: str | None = None
    file_url: str | None = None
    filename: str | None = None


class OutputText(_Nested):
    """An earlier answer's text, sent back as history."""

    type: Literal["output_text"]
    text: str


class Refusal(_Nested):
    type: Literal["refusal"]
    refusal: str


InputPart = Annotated[
    Annotated[InputText, Tag("type=input_text")]
    | Annotated[InputImage, Tag("type=input_image")]
    | Annotated[InputFile, Tag("type=input_file")]
    | Annotated[OutputText, Tag("type=output_text")]
    | Annotated[Refusal, Tag("type=refusal")],
    _one_of("type", "input_text", "input_image", "input_file", "output_text", "refusal"),
]
OutputPart = Annotated[
    Annotated[InputText, Tag("type=input_text")]
    | Annotated[InputImage, Tag("type=input_image")]
    | Annotated[InputFile, Tag("type=input_file")],
    _one_of("type", "input_text", "input_image", "input_file"),
]


class MessageItem(_Nested):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: str | Annotated[list[InputPart], Field(min_length=1)]
    id: str | None = None


class FunctionCallItem(_Nested):
    type: Literal["function_call"]
    call_id: Annotated[str, Field(min_length=1, max_length=64)]
    name: str
    arguments: str
    id: str | None = None


class FunctionCallOutputItem(_Nested):
    type: Literal["function_call_output"]
    call_id: Annotated[str, Field(min_length=1, max_length=64)]
    output: str | list[OutputPart]
    id: str | None = None


class CustomToolCallItem(_Nested):
    type: Literal["custom_tool_call"]
    call_id: Annotated[str, Field(min_length=1, max_length=64)]
    name: str
    input: str
    id: str | None = None


class CustomToolCallOutputItem(_Nested):
    type: Literal["custom_tool_call_output"]
    call_id: Annotated[str, Field(min_length=1, max_length=64)]
    output: str | list[OutputPart]
    id: str | None = None


class ReasoningText(_Nested):
    type: Literal["reasoning_text"]
    text: str


class SummaryText(_Nested):
    type: Literal["summary_text"]
    text: str


class ReasoningItem(_Nested):
    type: Literal["reasoning"]
    id: str | None = None
    summary: list[SummaryText] = Field(default_factory=list)
    content: list[ReasoningText] | None = None
    encrypted_content: str | None = None


class ItemReference(_Nested):
    type: Literal["item_reference"] | None = "item_reference"
    id: str


_ITEM_TYPES = (
    "message",
    "function_call",
    "function_call_output",
    "custom_tool_call",
    "custom_tool_call_output",
    "reasoning",
    "item_reference",
)


def _item_type(value: Any) -> str | None:
    """An item's ``type``; a message may leave it out (EasyInputMessage)."""
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if kind is None and isinstance(value, dict) and "role" in value:
        kind = "message"
    return f"type={kind}" if isinstance(kind, str) else None


InputItem = Annotated[
    Annotated[MessageItem, Tag("type=message")]
    | Annotated[FunctionCallItem, Tag("type=function_call")]
    | Annotated[FunctionCallOutputItem, Tag("type=function_call_output")]
    | Annotated[CustomToolCallItem, Tag("type=custom_tool_call")]
    | Annotated[CustomToolCallOutputItem, Tag("type=custom_tool_call_output")]
    | Annotated[ReasoningItem, Tag("type=reasoning")]
    | Annotated[ItemReference, Tag("type=item_reference")],
    Discriminator(
        _item_type,
        custom_error_type="invalid_value",
        custom_error_message="type: Supported values are: " + _quoted_list(list(_ITEM_TYPES)) + ".",
    ),
]


# --- tools ----------------------------------------------------------------------------


class FunctionTool(_Nested):
    type: Literal["function"]
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class CustomTool(_Nested):
    type: Literal["custom"]
    name: str
    description: str | None = None
    format: (
        Annotated[
            Annotated[TextFormat, Tag("type=text")] | Annotated[GrammarFormat, Tag("type=grammar")],
            _one_of("type", "text", "grammar"),
        ]
        | None
    ) = None


class NamespaceTool(_Nested):
    """Function and custom tools grouped under one name (the calls name their namespace)."""

    type: Literal["namespace"]
    name: Annotated[str, Field(min_length=1)]
    description: str | None = None
    tools: Annotated[
        list[
            Annotated[
                Annotated[FunctionTool, Tag("type=function")] | Annotated[CustomTool, Tag("type=custom")],
                _one_of("type", "function", "custom"),
            ]
        ],
        Field(min_length=1),
    ]


class Location(_Nested):
    type: Literal["approximate"] = "approximate"
    country: str | None = None
    region: str | None = None
    city: str | None = None
    timezone: str | None = None


class WebSearchTool(_Nested):
    type: Literal["web_search", "web_search_preview", "web_search_2025_08_26", "web_search_preview_2025_03_11"]
    search_context_size: Literal["low", "medium", "high"] | None = None
    user_location: Location | None = None


_WEB_SEARCH = ("web_search", "web_search_preview", "web_search_2025_08_26", "web_search_preview_2025_03_11")
_TOOL_TYPES = ("function", "custom", "namespace", *_WEB_SEARCH)

Tool = Annotated[
    Annotated[FunctionTool, Tag("type=function")]
    | Annotated[CustomTool, Tag("type=custom")]
    | Annotated[NamespaceTool, Tag("type=namespace")]
    | Annotated[WebSearchTool, Tag("type=web_search")]
    | Annotated[WebSearchTool, Tag("type=web_search_preview")]
    | Annotated[WebSearchTool, Tag("type=web_search_2025_08_26")]
    | Annotated[WebSearchTool, Tag("type=web_search_preview_2025_03_11")],
    _one_of("type", *_TOOL_TYPES),
]


class NamedTool(_Nested):
    type: Literal["function", "custom"]
    name: str


class HostedToolChoice(_Nested):
    type: Literal["web_search", "web_search_preview", "web_search_2025_08_26", "web_search_preview_2025_03_11"]


class AllowedToolsChoice(_Nested):
    type: Literal["allowed_tools"]
    mode: Literal["auto", "required"]
    tools: Annotated[list[dict[str, Any]], Field(min_length=1)]


ToolChoice = (
    Literal["none", "auto", "required"]
    | Annotated[
        Annotated[NamedTool, Tag("type=function")]
        | Annotated[NamedTool, Tag("type=custom")]
        | Annotated[AllowedToolsChoice, Tag("type=allowed_tools")]
        | Annotated[HostedToolChoice, Tag("type=web_search")]
        | Annotated[HostedToolChoice, Tag("type=web_search_preview")]
        | Annotated[HostedToolChoice, Tag("type=web_search_2025_08_26")]
        | Annotated[HostedToolChoice, Tag("type=web_search_preview_2025_03_11")],
        _one_of("type", "function", "custom", "allowed_tools", *_WEB_SEARCH),
    ]
)


# --- text and reasoning ----------------------------------------------------------------


class FormatText(_Nested):
    type: Literal["text"]


class FormatJSONObject(_Nested):
    type: Literal["json_object"]


class FormatJSONSchema(_Nested):
    type: Literal["json_schema"]
    name: Annotated[str, Field(max_length=64)]
    schema_: dict[str, Any] = Field(alias="schema")
    description: str | None = None
    strict: bool | None = None


TextResponseFormat = Annotated[
    Annotated[FormatText, Tag("type=text")]
    | Annotated[FormatJSONObject, Tag("type=json_object")]
    | Annotated[FormatJSONSchema, Tag("type=json_schema")],
    _one_of("type", "text", "json_object", "json_schema"),
]


class TextOptions(_Nested):
    format: TextResponseFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class ReasoningOptions(_Nested):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None


class StreamOptions(_Nested):
    include_obfuscation: bool | None = None


Include = Literal[
    "message.output_text.logprobs",
    "reasoning.encrypted_content",
    "message.input_image.image_url",
    "web_search_call.action.sources",
    "web_search_call.results",
    "code_interpreter_call.outputs",
    "computer_call_output.output.image_url",
    "file_search_call.results",
]


class CreateResponseRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", populate_by_name=True)

    model: str
    input: str | list[InputItem] | None = None
    instructions: str | None = None
    background: bool | None = None
    # Not in OpenAI's reference, yet its API takes it: the Codex CLI sends its session ids here.
    client_metadata: dict[str, Any] | None = None
    context_management: list[dict[str, Any]] | None = None
    conversation: str | dict[str, Any] | None = None
    include: list[Include] | None = None
    max_output_tokens: Annotated[int, Field(ge=16)] | None = None
    max_tool_calls: Annotated[int, Field(ge=1)] | None = None
    metadata: dict[str, str] | None = None
    moderation: dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    previous_response_id: str | None = None
    prompt: dict[str, Any] | None = None
    prompt_cache_key: str | None = None
    prompt_cache_options: dict[str, Any] | None = None
    prompt_cache_retention: Literal["in_memory", "in-memory", "24h"] | None = None
    reasoning: ReasoningOptions | None = None
    safety_identifier: Annotated[str, Field(max_length=64)] | None = None
    service_tier: Literal["auto", "default", "flex", "scale", "priority", "fast"] | None = None
    store: bool | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    text: TextOptions | None = None
    tool_choice: ToolChoice | None = None
    tools: list[Tool] | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    top_p: Probability | None = None
    truncation: Literal["auto", "disabled"] | None = None
    user: str | None = None


# --- the Conversations API -------------------------------------------------------------


class CreateConversationRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    items: Annotated[list[InputItem], Field(max_length=20)] | None = None
    metadata: dict[str, str] | None = None


class AddConversationItemsRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    items: Annotated[list[InputItem], Field(min_length=1, max_length=20)]


class UpdateConversationRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    metadata: dict[str, str]

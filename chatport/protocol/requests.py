"""Request models for POST /v1/chat/completions, following chat-openapi.yaml.

Top-level fields are closed (an unknown one is an error, as with OpenAI); nested
objects ignore fields they do not know, because the SDKs send response objects back
as history (an assistant message carries ``annotations``, ``parsed`` ...).
Every union member gets a ``Tag("FIELD=VALUE")`` or is a class so that ``protocol.validation``
can strip those from error locations and name the parameter as OpenAI does.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


class _Nested(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


def _one_of(field: str, *values: str) -> Discriminator:
    """Picks a union member by ``field``; each member is tagged ``Tag("FIELD=VALUE")``."""

    def tag_of(value: Any) -> str | None:
        tag = value.get(field) if isinstance(value, dict) else getattr(value, field, None)
        return f"{field}={tag}" if isinstance(tag, str) else None

    return Discriminator(
        tag_of,
        custom_error_type="invalid_value",
        custom_error_message=f"{field}: Supported values are: " + _quoted_list(list(values)) + ".",
    )


def _quoted_list(values: list[str]) -> str:
    quoted = [f"'{v}'" for v in values]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + ", and " + quoted[-1]


FunctionT = TypeVar("FunctionT")
CustomT = TypeVar("CustomT")
# Tools and tool calls alike are a function or a custom tool, told apart by "type".
FunctionOrCustom = Annotated[
    Annotated[FunctionT, Tag("type=function")] | Annotated[CustomT, Tag("type=custom")],
    _one_of("type", "function", "custom"),
]


# --- content parts -----------------------------------------------------------------


class TextPart(_Nested):
    type: Literal["text"]
    text: str


class ImageURL(_Nested):
    url: str
    detail: Literal["auto", "low", "high"] = "auto"


class ImagePart(_Nested):
    type: Literal["image_url"]
    image_url: ImageURL


class InputAudio(_Nested):
    data: str
    format: Literal["wav", "mp3"]


class AudioPart(_Nested):
    type: Literal["input_audio"]
    input_audio: InputAudio


class FileRef(_Nested):
    filename: str | None = None
    file_data: str | None = None
    file_id: str | None = None


class FilePart(_Nested):
    type: Literal["file"]
    file: FileRef


class RefusalPart(_Nested):
    type: Literal["refusal"]
    refusal: str


UserPart = Annotated[
    Annotated[TextPart, Tag("type=text")]
    | Annotated[ImagePart, Tag("type=image_url")]
    | Annotated[AudioPart, Tag("type=input_audio")]
    | Annotated[FilePart, Tag("type=file")],
    _one_of("type", "text", "image_url", "input_audio", "file"),
]
AssistantPart = Annotated[
    Annotated[TextPart, Tag("type=text")] | Annotated[RefusalPart, Tag("type=refusal")],
    _one_of("type", "text", "refusal"),
]
TextOnlyPart = Annotated[Annotated[TextPart, Tag("type=text")], _one_of("type", "text")]

TextContent = str | Annotated[list[TextOnlyPart], Field(min_length=1)]
UserContent = str | Annotated[list[UserPart], Field(min_length=1)]
AssistantContent = str | Annotated[list[AssistantPart], Field(min_length=1)]


# --- messages ------------------------------------------------------------------------


class FunctionCallData(_Nested):
    name: str
    arguments: str


class FunctionToolCall(_Nested):
    id: str
    type: Literal["function"]
    function: FunctionCallData


class CustomCallData(_Nested):
    name: str
    input: str


class CustomToolCall(_Nested):
    id: str
    type: Literal["custom"]
    custom: CustomCallData


ToolCall = FunctionOrCustom[FunctionToolCall, CustomToolCall]


class DeveloperMessage(_Nested):
    role: Literal["developer"]
    content: TextContent
    name: str | None = None


class SystemMessage(_Nested):
    role: Literal["system"]
    content: TextContent
    name: str | None = None


class UserMessage(_Nested):
    role: Literal["user"]
    content: UserContent
    name: str | None = None


class AssistantAudioRef(_Nested):
    id: str


class AssistantMessage(_Nested):
    role: Literal["assistant"]
    content: AssistantContent | None = None
    refusal: str | None = None
    name: str | None = None
    audio: AssistantAudioRef | None = None
    tool_calls: list[ToolCall] | None = None
    function_call: FunctionCallData | None = None
    # An earlier answer's reasoning, as reasoning models return it (llama.cpp, DeepSeek).
    reasoning_content: str | None = None


class ToolMessage(_Nested):
    role: Literal["tool"]
    content: TextContent
    tool_call_id: str


class FunctionMessage(_Nested):
    role: Literal["function"]
    content: str | None
    name: str


Message = Annotated[
    Annotated[DeveloperMessage, Tag("role=developer")]
    | Annotated[SystemMessage, Tag("role=system")]
    | Annotated[UserMessage, Tag("role=user")]
    | Annotated[AssistantMessage, Tag("role=assistant")]
    | Annotated[ToolMessage, Tag("role=tool")]
    | Annotated[FunctionMessage, Tag("role=function")],
    _one_of("role", "developer", "system", "user", "assistant", "tool", "function"),
]


# --- tools, formats and options ------------------------------------------------------


class FunctionDefinition(_Nested):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class FunctionTool(_Nested):
    type: Literal["function"]
    function: FunctionDefinition


class TextFormat(_Nested):
    type: Literal["text"]


class GrammarDefinition(_Nested):
    definition: str
    syntax: Literal["lark", "regex"]


class GrammarFormat(_Nested):
    type: Literal["grammar"]
    grammar: GrammarDefinition


class CustomDefinition(_Nested):
    name: str
    description: str | None = None
    format: (
        Annotated[
            Annotated[TextFormat, Tag("type=text")] | Annotated[GrammarFormat, Tag("type=grammar")],
            _one_of("type", "text", "grammar"),
        ]
        | None
    ) = None


class CustomTool(_Nested):
    type: Literal["custom"]
    custom: CustomDefinition


Tool = FunctionOrCustom[FunctionTool, CustomTool]


class NamedFunction(_Nested):
    name: str


class NamedFunctionChoice(_Nested):
    type: Literal["function"]
    function: NamedFunction


class NamedCustomChoice(_Nested):
    type: Literal["custom"]
    custom: NamedFunction


class AllowedTools(_Nested):
    mode: Literal["auto", "required"]
    tools: list[dict[str, Any]]


class AllowedToolsChoice(_Nested):
    type: Literal["allowed_tools"]
    allowed_tools: AllowedTools


ToolChoice = (
    Literal["none", "auto", "required"]
    | Annotated[
        Annotated[NamedFunctionChoice, Tag("type=function")]
        | Annotated[NamedCustomChoice, Tag("type=custom")]
        | Annotated[AllowedToolsChoice, Tag("type=allowed_tools")],
        _one_of("type", "function", "custom", "allowed_tools"),
    ]
)


class LegacyFunction(_Nested):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None


class JSONSchemaSpec(_Nested):
    name: str
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormatText(_Nested):
    type: Literal["text"]


class ResponseFormatJSONObject(_Nested):
    type: Literal["json_object"]


class ResponseFormatJSONSchema(_Nested):
    type: Literal["json_schema"]
    json_schema: JSONSchemaSpec


ResponseFormat = Annotated[
    Annotated[ResponseFormatText, Tag("type=text")]
    | Annotated[ResponseFormatJSONObject, Tag("type=json_object")]
    | Annotated[ResponseFormatJSONSchema, Tag("type=json_schema")],
    _one_of("type", "text", "json_object", "json_schema"),
]


class StreamOptions(_Nested):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


class ApproximateLocation(_Nested):
    country: str | None = None  # ISO 3166-1 alpha-2, as "US"
    region: str | None = None
    city: str | None = None
    timezone: str | None = None  # IANA, as "America/Los_Angeles"


class UserLocation(_Nested):
    type: Literal["approximate"]
    approximate: ApproximateLocation


class WebSearchOptions(_Nested):
    user_location: UserLocation | None = None
    search_context_size: Literal["low", "medium", "high"] | None = None


class PredictionContent(_Nested):
    type: Literal["content"]
    content: TextContent


class AudioOutput(_Nested):
    voice: str | dict[str, Any]
    format: Literal["wav", "aac", "mp3", "flac", "opus", "pcm16"]


Probability = Annotated[float, Field(ge=0, le=1)]
Penalty = Annotated[float, Field(ge=-2, le=2)]


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", populate_by_name=True)

    messages: Annotated[list[Message], Field(min_length=1)]
    model: str
    audio: AudioOutput | None = None
    frequency_penalty: Penalty | None = None
    function_call: Literal["none", "auto"] | NamedFunction | None = None
    functions: Annotated[list[LegacyFunction], Field(min_length=1, max_length=128)] | None = None
    logit_bias: dict[str, int] | None = None
    logprobs: bool | None = None
    max_completion_tokens: int | None = None
    max_tokens: int | None = None
    metadata: dict[str, str] | None = None
    modalities: list[Literal["text", "audio"]] | None = None
    moderation: dict[str, Any] | None = None
    n: Annotated[int, Field(ge=1, le=128)] | None = None
    parallel_tool_calls: bool | None = None
    prediction: PredictionContent | None = None
    presence_penalty: Penalty | None = None
    prompt_cache_key: str | None = None
    prompt_cache_options: dict[str, Any] | None = None
    # "in-memory" is the spelling of the Python and TypeScript SDK docs, "in_memory" the API's.
    prompt_cache_retention: Literal["in_memory", "in-memory", "24h"] | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = None
    response_format: ResponseFormat | None = None
    safety_identifier: Annotated[str, Field(max_length=64)] | None = None
    seed: Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)] | None = None
    service_tier: Literal["auto", "default", "flex", "scale", "priority", "fast"] | None = None
    stop: str | Annotated[list[str], Field(min_length=1, max_length=4)] | None = None
    store: bool | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    tool_choice: ToolChoice | None = None
    tools: list[Tool] | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    top_p: Probability | None = None
    user: str | None = None
    verbosity: Literal["low", "medium", "high"] | None = None
    web_search_options: WebSearchOptions | None = None


class SpeechRequest(BaseModel):
    """POST /v1/audio/speech."""

    model_config = ConfigDict(strict=True, extra="forbid")

    model: str
    input: Annotated[str, Field(min_length=1, max_length=4096)]
    voice: str | dict[str, Any]
    instructions: str | None = None
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: Annotated[float, Field(ge=0.25, le=4.0)] = 1.0
    stream_format: Literal["audio", "sse"] = "audio"


PartT = TypeVar("PartT", TextPart, ImagePart, AudioPart, FilePart)


def parts_of(messages: list[Any], kind: type[PartT]) -> list[tuple[str, PartT]]:
    """Every content part of one type, in prompt order, with its path for errors
    (``messages[0].content[1]``)."""
    return [
        (f"messages[{i}].content[{j}]", part)
        for i, message in enumerate(messages)
        if isinstance(message.content, list)
        for j, part in enumerate(message.content)
        if isinstance(part, kind)
    ]

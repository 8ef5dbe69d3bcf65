"""Checks on a well-typed request that need more than its schema: limits OpenAI applies
on top of the spec, and parameters whose feature this server does not offer (yet),
which are refused by name rather than ignored."""

from __future__ import annotations

import re

from chatport.protocol.errors import InvalidRequestError, unsupported_parameter
from chatport.protocol.requests import (
    AssistantMessage,
    ChatCompletionRequest,
    Message,
    ResponseFormatJSONSchema,
    ToolMessage,
    WebSearchOptions,
)

METADATA_MAX_PAIRS = 16
METADATA_MAX_KEY = 64
METADATA_MAX_VALUE = 512
LOGIT_BIAS_LIMIT = 100

# Parameters whose feature has not landed, with the reason shown to the client.
_NOT_YET = {
    "moderation": "by this server",
    "prompt_cache_options": "by this server yet",
    "reasoning_effort": "with this model (it is not a reasoning model)",
    "verbosity": "with this model",
}


# Parameters an operator may have dropped (accepted and ignored, as LiteLLM's drop_params):
# leaving them out changes how an answer is made, never the shape of what comes back.
DROPPABLE = frozenset({"reasoning_effort", "verbosity", "web_search_options", "prompt_cache_options"})


def drop_params(request: ChatCompletionRequest, names: frozenset[str]) -> tuple[ChatCompletionRequest, list[str]]:
    """The request without the named parameters, and which of them it had."""
    given = sorted(name for name in names if getattr(request, name) is not None)
    if not given:
        return request, []
    return request.model_copy(update=dict.fromkeys(given)), given


def check_request(request: ChatCompletionRequest, *, max_choices: int, reasons: bool = False, searches: bool = False) -> None:
    """``reasons``: the model's chat template can think (it takes reasoning_effort);
    ``searches``: the server has a search engine (--web-search). Counts and lengths were
    checked on the raw body (``service.bounds.check_sizes``)."""
    for name, detail in _NOT_YET.items():
        if getattr(request, name) is not None and not (reasons and name == "reasoning_effort"):
            raise unsupported_parameter(name, detail)
    if request.web_search_options is not None:
        check_web_search(request.web_search_options, searches)
    check_tool_history(request.messages)
    fmt = request.response_format
    if isinstance(fmt, ResponseFormatJSONSchema):
        check_name(fmt.json_schema.name, "response_format.json_schema.name")
    check_metadata(request.metadata)
    _check_logit_bias(request.logit_bias)
    for name in ("max_tokens", "max_completion_tokens"):
        value = getattr(request, name)
        if value is not None and value < 1:
            raise InvalidRequestError(
                f"Invalid '{name}': integer below minimum value. Expected a value >= 1, but got {value} instead.",
                param=name,
                code="integer_below_min_value",
            )
    if request.top_logprobs is not None and not request.logprobs:
        raise InvalidRequestError(
            "Invalid value for 'top_logprobs': 'logprobs' must be set to true when 'top_logprobs' is used.",
            param="top_logprobs",
            code="invalid_value",
        )
    if request.stream_options is not None and not request.stream:
        raise InvalidRequestError(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
            code="invalid_value",
        )
    if (request.n or 1) > max_choices:
        raise InvalidRequestError(
            f"Invalid 'n': this server runs at most {max_choices} sequences at once, but got {request.n}.",
            param="n",
            code="integer_above_max_value",
        )


_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_LOCATION_MAX = 256  # characters of each user_location field


def check_web_search(options: WebSearchOptions, searches: bool) -> None:
    if not searches:
        raise InvalidRequestError("Web search options not supported with this model.", param="web_search_options")
    where = options.user_location.approximate if options.user_location is not None else None
    if where is None:
        return
    base = "web_search_options.user_location.approximate"
    if where.country is not None and not _COUNTRY.match(where.country):
        raise InvalidRequestError(
            f"Invalid value for '{base}.country': expected a two-letter ISO 3166-1 country code such as 'US', "
            f"but got {where.country[:40]!r}.",
            param=f"{base}.country",
            code="invalid_value",
        )
    for name in ("region", "city", "timezone"):
        value = getattr(where, name)
        if value is not None and len(value) > _LOCATION_MAX:
            raise InvalidRequestError(
                f"Invalid '{base}.{name}': string too long. Expected a string with maximum length {_LOCATION_MAX}, "
                f"but got a string with length {len(value)} instead.",
                param=f"{base}.{name}",
                code="string_above_max_length",
            )


def check_name(name: str, param: str) -> None:
    """Names of functions, custom tools and JSON schemas, as OpenAI checks them."""
    if not _NAME.match(name):
        raise InvalidRequestError(
            f"Invalid '{param}': string does not match pattern. Expected a string that matches the "
            f"pattern '^[a-zA-Z0-9_-]+$' of at most 64 characters.",
            param=param,
            code="invalid_value",
        )


def check_tool_history(messages: list[Message]) -> None:
    """Every tool message answers a call of the assistant message before it, and every such
    call is answered before the conversation goes on, as OpenAI requires."""
    open_calls: dict[str, int] = {}  # unanswered call id -> index of the message that made it
    answering = False  # inside the tool messages that follow calls
    for i, message in enumerate(messages):
        if isinstance(message, ToolMessage):
            if not answering:
                raise InvalidRequestError(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
                    param=f"messages.[{i}].role",
                )
            if open_calls.pop(message.tool_call_id, None) is None:
                raise InvalidRequestError(
                    f"Invalid parameter: 'tool_call_id' of '{message.tool_call_id}' not found in 'tool_calls' of previous message.",
                    param=f"messages.[{i}].tool_call_id",
                )
            continue
        _check_answered(open_calls)
        calls = message.tool_calls if isinstance(message, AssistantMessage) else None
        open_calls = {call.id: i for call in calls or []}
        answering = bool(open_calls)
    _check_answered(open_calls)


def _check_answered(open_calls: dict[str, int]) -> None:
    if open_calls:
        raise InvalidRequestError(
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. "
            f"The following tool_call_ids did not have response messages: {', '.join(open_calls)}",
            param=f"messages.[{next(iter(open_calls.values()))}].role",
        )


def check_storable(text: str, param: str) -> None:
    """A string bound for the store: a NUL character is a data error in PostgreSQL's text
    columns (and so, found here, a 400 naming the parameter, checked before any work)."""
    if "\x00" in text:
        raise InvalidRequestError(
            f"Invalid '{param}': the string contains a NUL character (\\u0000), which cannot be stored.",
            param=param,
            code="invalid_value",
        )


def check_metadata(metadata: dict[str, str] | None, param: str = "metadata") -> None:
    if metadata is None:
        return
    if len(metadata) > METADATA_MAX_PAIRS:
        raise InvalidRequestError(
            f"Invalid 'metadata': too many properties. Expected an object with at most "
            f"{METADATA_MAX_PAIRS} properties, but got an object with {len(metadata)} properties instead.",
            param="metadata",
            code="object_above_max_properties",
        )
    for key, value in metadata.items():
        if len(key) > METADATA_MAX_KEY:
            raise _too_long(param, "key", METADATA_MAX_KEY, len(key))
        check_storable(key, param)
        if len(value) > METADATA_MAX_VALUE:
            raise _too_long(f"{param}.{key}", "string", METADATA_MAX_VALUE, len(value))
        check_storable(value, f"{param}.{key}")


def _too_long(param: str, what: str, limit: int, actual: int) -> InvalidRequestError:
    return InvalidRequestError(
        f"Invalid '{param}': {what} too long. Expected a {what} with maximum length {limit}, "
        f"but got a {what} with length {actual} instead.",
        param=param,
        code="string_above_max_length",
    )


def _check_logit_bias(bias: dict[str, int] | None) -> None:
    for key, value in (bias or {}).items():
        # ASCII digits only: str.isdigit() also admits '²' and other digits int() refuses.
        if not (key.isascii() and key.isdigit()):
            raise InvalidRequestError(
                f"Invalid key in 'logit_bias': {key}. Keys must be token ids.", param="logit_bias", code="invalid_value"
            )
        if not -LOGIT_BIAS_LIMIT <= value <= LOGIT_BIAS_LIMIT:
            raise InvalidRequestError(
                f"Invalid value in 'logit_bias' for token {key}: {value}. Values must be between "
                f"-{LOGIT_BIAS_LIMIT} and {LOGIT_BIAS_LIMIT}.",
                param=f"logit_bias.{key}",
                code="invalid_value",
            )

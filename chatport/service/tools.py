"""Function tools: validation, how tools reach the prompt, the grammar each tool_choice
mode imposes, and how the model's output becomes ``tool_calls``.

Call syntax (Qwen/Hermes style, also chatport's generic format for templates that have no
tool support of their own)::

    <tool_call>
    {"name": "get_weather", "arguments": {"location": "Paris"}}
    </tool_call>
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import llguidance as llg

from chatport.protocol import requests as rq
from chatport.protocol.errors import InvalidRequestError
from chatport.protocol.responses import random_id
from chatport.service.models import ServedModel
from chatport.service.structured import StrictSchemaCheck

# Parallel calls per answer. OpenAI sets no number; a grammar that lets a small model
# repeat calls without end can run it into max_tokens, which breaks the last call.
MAX_PARALLEL_CALLS = 4

CALL_OPEN = "<tool_call>"
CALL_CLOSE = "</tool_call>"
# Custom tools take raw input (under the tool's own grammar), so they get a tag of their own.
CUSTOM_OPEN = "<custom_call"
CUSTOM_CLOSE = "</custom_call>"
_CUSTOM_CALL = re.compile(r'^<custom_call name="([A-Za-z0-9_-]{1,64})">(.*)$', re.DOTALL)
# Small models often skip the tags in auto mode and answer with the bare call object,
# sometimes in a ```json fence: that is recognized (and constrained) too.
BARE_OPENS = ('{"name"', '{\n  "name"', '{\n    "name"')
_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_COMPACT = {"whitespace_flexible": False}


@dataclass
class FunctionSpec:
    name: str
    description: str | None
    parameters: dict[str, Any]
    strict: bool


@dataclass
class CustomSpec:
    name: str
    description: str | None
    syntax: str  # "text" | "lark" | "regex"
    definition: str

    def subgrammar(self) -> str:
        """A Lark grammar (with a start rule) for the call's input."""
        if self.syntax == "lark":
            return self.definition
        if self.syntax == "regex":
            pattern = self.definition
            pattern = pattern[1:] if pattern.startswith("^") else pattern
            pattern = pattern[:-1] if pattern.endswith("$") and not pattern.endswith("\\$") else pattern
            return f"start: /{llg.regex_to_lark(pattern)}/"
        # Free text, up to the closing tag.
        return "start: /[^<]*/"


@dataclass
class ToolPlan:
    """What the request's tools mean for rendering, decoding and parsing."""

    functions: list[FunctionSpec]
    customs: list[CustomSpec]
    callable: list[str]  # names the model may call
    mode: str  # "none" | "auto" | "required"
    parallel: bool
    legacy: bool = False  # functions/function_call: answer with message.function_call
    template_tools: list[dict[str, Any]] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.mode != "none" and bool(self.callable)


def plan_tools(request: rq.ChatCompletionRequest) -> ToolPlan | None:
    legacy = request.functions is not None
    if legacy and request.tools is not None:
        raise InvalidRequestError(
            "Use either 'tools' or the deprecated 'functions', not both.", param="functions", code="invalid_value"
        )
    if request.tools is None and not legacy:
        for name in ("tool_choice", "parallel_tool_calls"):
            if getattr(request, name) is not None:
                raise InvalidRequestError(
                    f"Invalid value for '{name}': '{name}' is only allowed when 'tools' are specified.",
                    param=name,
                    code="invalid_value",
                )
        if request.function_call is not None:
            raise InvalidRequestError(
                "Invalid value for 'function_call': 'function_call' is only allowed when 'functions' are specified.",
                param="function_call",
                code="invalid_value",
            )
        return None

    functions: list[FunctionSpec] = []
    seen: dict[str, str] = {}
    customs: list[CustomSpec] = []
    if legacy:
        entries = [(f"functions[{i}]", f.name, f.description, f.parameters, False) for i, f in enumerate(request.functions)]
    else:
        entries = []
        for i, tool in enumerate(request.tools):
            if isinstance(tool, rq.CustomTool):
                customs.append(_custom_spec(tool.custom, f"tools[{i}].custom", seen))
                continue
            fn = tool.function
            entries.append((f"tools[{i}].function", fn.name, fn.description, fn.parameters, bool(fn.strict)))
    for where, name, description, parameters, strict in entries:
        _claim_name(name, where, seen)
        params = parameters if parameters is not None else {"type": "object", "properties": {}}
        if strict:
            check = StrictSchemaCheck(name)
            try:
                check.check(params)
            except InvalidRequestError as exc:
                raise InvalidRequestError(
                    exc.message.replace("response_format", "function", 1), param=f"{where}.parameters", code=None
                ) from None
        functions.append(FunctionSpec(name, description, params, strict))

    names = [f.name for f in functions] + [c.name for c in customs]
    mode, callable_names = _choice(request, names, legacy, {c.name for c in customs})
    # A named choice asks for that one call; the legacy API never made more than one.
    named = isinstance(request.tool_choice, (rq.NamedFunctionChoice, rq.NamedCustomChoice))
    parallel = not (legacy or named) and request.parallel_tool_calls is not False
    template_tools = [
        {"type": "function", "function": {"name": f.name, "description": f.description or "", "parameters": f.parameters}}
        for f in functions
    ]
    return ToolPlan(functions, customs, callable_names, mode, parallel, legacy, template_tools)


def _claim_name(name: str, where: str, seen: dict[str, str]) -> None:
    if not _NAME.match(name):
        raise InvalidRequestError(
            f"Invalid '{where}.name': string does not match pattern. Expected a string that matches the "
            f"pattern '^[a-zA-Z0-9_-]+$' of at most 64 characters.",
            param=f"{where}.name",
            code="invalid_value",
        )
    if name in seen:
        raise InvalidRequestError(
            f"Invalid '{where}.name': duplicate tool name '{name}' (also at {seen[name]}).",
            param=f"{where}.name",
            code="invalid_value",
        )
    seen[name] = where


def _custom_spec(custom: rq.CustomDefinition, where: str, seen: dict[str, str]) -> CustomSpec:
    _claim_name(custom.name, where, seen)
    fmt = custom.format
    if fmt is None or isinstance(fmt, rq.TextFormat):
        return CustomSpec(custom.name, custom.description, "text", "")
    spec = CustomSpec(custom.name, custom.description, fmt.grammar.syntax, fmt.grammar.definition)
    grammar = llg.LLMatcher.grammar_from_lark(spec.subgrammar())
    error = llg.LLMatcher.validate_grammar(grammar)
    if error:
        raise InvalidRequestError(
            f"Invalid {spec.syntax} grammar for custom tool '{custom.name}': {error.strip().splitlines()[0]}",
            param=f"{where}.format.grammar.definition",
            code="invalid_grammar",
        )
    return spec


def _choice(request: rq.ChatCompletionRequest, names: list[str], legacy: bool, customs: set[str]) -> tuple[str, list[str]]:
    if legacy:
        choice = request.function_call
        if choice is None or choice == "auto":
            return "auto", names
        if choice == "none":
            return "none", []
        return "required", [_known(choice.name, names, "function_call")]
    choice = request.tool_choice
    if choice is None:
        return "auto", names
    if isinstance(choice, str):
        return choice, names if choice != "none" else []
    functions = [n for n in names if n not in customs]
    if isinstance(choice, rq.NamedFunctionChoice):
        return "required", [_known(choice.function.name, functions, "tool_choice")]
    if isinstance(choice, rq.NamedCustomChoice):
        return "required", [_known(choice.custom.name, sorted(customs), "tool_choice")]
    allowed = []
    for i, ref in enumerate(choice.allowed_tools.tools):
        kind = ref.get("type") if isinstance(ref, dict) else None
        inner = ref.get(kind) if kind in ("function", "custom") else None
        name = inner.get("name") if isinstance(inner, dict) else None
        if not isinstance(name, str):
            raise InvalidRequestError(
                "Invalid value for 'tool_choice.allowed_tools.tools': expected {\"type\": \"function\", \"function\": {\"name\": ...}} "
                "or {\"type\": \"custom\", \"custom\": {\"name\": ...}}.",
                param=f"tool_choice.allowed_tools.tools[{i}]",
                code="invalid_value",
            )
        pool = sorted(customs) if kind == "custom" else functions
        allowed.append(_known(name, pool, f"tool_choice.allowed_tools.tools[{i}]"))
    return choice.allowed_tools.mode, allowed


def _known(name: str, names: list[str], param: str) -> str:
    if name not in names:
        raise InvalidRequestError(
            f"Invalid value for '{param}': tool '{name}' is not among the request's tools.", param=param, code="invalid_value"
        )
    return name


# --- prompt ---------------------------------------------------------------------------

GENERIC_INSTRUCTIONS = (
    "You can call functions to help answer. To call one, reply with exactly:\n"
    f"{CALL_OPEN}\n{{\"name\": \"<function name>\", \"arguments\": {{<arguments as JSON>}}}}\n{CALL_CLOSE}\n"
    "Available functions:\n"
)


CUSTOM_INSTRUCTIONS = (
    "You can also call custom tools, whose input is plain text (not JSON). To call one, reply with exactly:\n"
    f'{CUSTOM_OPEN} name="<tool name>">input{CUSTOM_CLOSE}\n'
    "Custom tools:\n"
)


def add_tools_to_messages(messages: list[dict[str, Any]], plan: ToolPlan, template_has_tools: bool) -> list[dict[str, Any]]:
    """Describe in the system message what the template cannot: every tool for templates
    without tool support, custom tools always."""
    if not plan.active:
        return messages
    notes = []
    if not template_has_tools and any(f.name in plan.callable for f in plan.functions):
        listed = "\n".join(
            json.dumps(t["function"], ensure_ascii=False) for t in plan.template_tools if t["function"]["name"] in plan.callable
        )
        notes.append(GENERIC_INSTRUCTIONS + listed)
    customs = [c for c in plan.customs if c.name in plan.callable]
    if customs:
        lines = []
        for c in customs:
            shape = "free text" if c.syntax == "text" else f"text matching this {c.syntax} grammar: {c.definition}"
            lines.append(f"- {c.name}: {c.description or ''} (input: {shape})")
        notes.append(CUSTOM_INSTRUCTIONS + "\n".join(lines))
    if not notes:
        return messages
    note = "\n\n".join(notes)
    if messages and messages[0]["role"] == "system":
        first = {**messages[0], "content": f"{messages[0]['content']}\n\n{note}"}
        return [first, *messages[1:]]
    return [{"role": "system", "content": note}, *messages]


# --- grammar --------------------------------------------------------------------------


def _call_schema(fn: FunctionSpec) -> dict[str, Any]:
    arguments = dict(fn.parameters)
    arguments.setdefault("type", "object")
    return {
        "type": "object",
        "properties": {"name": {"const": fn.name}, "arguments": arguments},
        "required": ["name", "arguments"],
        "additionalProperties": False,
        "x-guidance": {**_COMPACT, "lenient": not fn.strict},
    }


def _tag(model: ServedModel, text: str) -> str:
    """The grammar literal for a call tag: the model's own token when its vocabulary has one
    for the whole tag (Qwen's <tool_call>), else the plain text."""
    tokens = model.llama.tokenize(text)
    return f"<[{tokens[0]}]>" if len(tokens) == 1 else json.dumps(text)


def call_grammar(plan: ToolPlan, model: ServedModel, *, after: str | None = None) -> str:
    """Grammar for one or more calls. ``after``: the model has already written this opening
    tag (auto mode switches the grammar on when it does)."""
    fns = [f for f in plan.functions if f.name in plan.callable]
    customs = [c for c in plan.customs if c.name in plan.callable]
    more = f"call{{0,{MAX_PARALLEL_CALLS - 1}}}" if plan.parallel else ""
    first = {CALL_OPEN: "fcall_body", CUSTOM_OPEN: "ccall_rest"}.get(after or "", "call")
    lines = [f"start: {first} {more}".strip(), "call: " + " | ".join((["fcall"] if fns else []) + (["ccall"] if customs else []))]
    if fns:
        lines += [
            f"fcall: {_tag(model, CALL_OPEN)} fcall_body",
            f'fcall_body: "\\n" body "\\n" {_tag(model, CALL_CLOSE)} "\\n"?',
            "body: " + " | ".join(f"fn_{i}" for i in range(len(fns))),
            *(f"fn_{i}: %json {json.dumps(_call_schema(f))}" for i, f in enumerate(fns)),
        ]
    if customs:
        lines += [
            f"ccall: {json.dumps(CUSTOM_OPEN)} ccall_rest",
            "ccall_rest: " + " | ".join(f"custom_{i}" for i in range(len(customs))),
            *(
                f'custom_{i}: {json.dumps(f" name={json.dumps(c.name)}>")} @input_{i} {json.dumps(CUSTOM_CLOSE)} "\\n"?'
                for i, c in enumerate(customs)
            ),
        ]
    main = "\n".join(lines)
    if not customs:
        return llg.LLMatcher.grammar_from_lark(main)
    grammars = [{"lark_grammar": main}] + [
        {"name": f"input_{i}", "lark_grammar": c.subgrammar()} for i, c in enumerate(customs)
    ]
    return json.dumps({"grammars": grammars})


def bare_call_grammar(plan: ToolPlan) -> str:
    """The rest of a bare ``{"name": ..., "arguments": {...}}`` once ``{"name"`` is written."""
    fns = [f for f in plan.functions if f.name in plan.callable]
    args = []
    for i, f in enumerate(fns):
        schema = dict(f.parameters)
        schema.setdefault("type", "object")
        schema["x-guidance"] = {"whitespace_pattern": "[ \\n]{0,16}", "lenient": not f.strict}
        args.append(f"args_{i}: %json {json.dumps(schema)}")
    alts = " | ".join(f'{json.dumps(json.dumps(f.name))} WS "," WS "\\"arguments\\"" WS ":" WS args_{i}' for i, f in enumerate(fns))
    lines = [
        'start: WS ":" WS call WS "}" TAIL?',
        f"call: {alts}",
        "WS: /[ \\n]{0,8}/",
        'TAIL: /\\n{0,2}```/',
        *args,
    ]
    return llg.LLMatcher.grammar_from_lark("\n".join(lines))


def grammars_for(plan: ToolPlan, model: ServedModel) -> tuple[str | None, tuple[tuple[str, str], ...] | None]:
    """(grammar from the first token, ((trigger, grammar once triggered), ...))."""
    if not plan.active:
        return None, None
    if plan.mode == "required":
        grammar, lazy = call_grammar(plan, model), None
    else:
        grammar, lazy = None, ()
        if any(f.name in plan.callable for f in plan.functions):
            bare = bare_call_grammar(plan)
            lazy += ((CALL_OPEN, call_grammar(plan, model, after=CALL_OPEN)), *((opener, bare) for opener in BARE_OPENS))
        if any(c.name in plan.callable for c in plan.customs):
            lazy += ((CUSTOM_OPEN, call_grammar(plan, model, after=CUSTOM_OPEN)),)
    return grammar, lazy


def tools_error(detail: str) -> InvalidRequestError:
    return InvalidRequestError(f"Invalid tool definitions: {detail}", param="tools", code=None)


# --- output ---------------------------------------------------------------------------


@dataclass
class ParsedCall:
    name: str
    arguments: str
    custom: bool = False  # arguments then holds the custom tool's raw input


class ToolCallParser:
    """Splits streamed output into content and completed calls; never releases part of a
    call marker as content. A bare call object is complete only when the output ends."""

    def __init__(self) -> None:
        self._buffer = ""
        self._in_call = False
        self._bare = False

    def feed(self, text: str) -> tuple[str, list[ParsedCall]]:
        self._buffer += text
        content, calls = "", []
        while not self._bare:
            if not self._in_call:
                hits = [(at, m) for m in _MARKERS if (at := self._buffer.find(m)) >= 0]
                if not hits:
                    keep = max(_partial_suffix(self._buffer, m) for m in _MARKERS)
                    content += self._buffer[: len(self._buffer) - keep]
                    self._buffer = self._buffer[len(self._buffer) - keep :]
                    return content, calls
                at, marker = min(hits)
                content += self._buffer[:at]
                if marker in BARE_OPENS:
                    self._buffer = self._buffer[at:]
                    self._bare = True
                    break
                self._buffer = self._buffer[at:]
                self._in_call = True
            close = CUSTOM_CLOSE if self._buffer.startswith(CUSTOM_OPEN) else CALL_CLOSE
            end = self._buffer.find(close)
            if end < 0:
                return content, calls
            raw, self._buffer = self._buffer[:end], self._buffer[end + len(close) :].lstrip("\n")
            self._in_call = False
            call = _parse_custom(raw) if close == CUSTOM_CLOSE else _parse_call(raw[len(CALL_OPEN) :])
            if call is None:
                content += raw + close
            else:
                calls.append(call)
        return content, calls

    def finish(self) -> tuple[str, list[ParsedCall]]:
        """What is left when generation ends: a bare call, or text (an unfinished call stays text)."""
        buffer, bare = self._buffer, self._bare
        self._buffer, self._in_call, self._bare = "", False, False
        if bare:
            try:
                data, end = json.JSONDecoder().raw_decode(buffer)
            except ValueError:
                return buffer, []
            call = _parse_call(json.dumps(data)) if isinstance(data, dict) and "arguments" in data else None
            if call is not None and buffer[end:].strip() in ("", "```"):
                return "", [call]
            return buffer, []
        return buffer, []


_MARKERS = (CALL_OPEN, CUSTOM_OPEN, *BARE_OPENS)


def _parse_custom(raw: str) -> ParsedCall | None:
    match = _CUSTOM_CALL.match(raw)
    return ParsedCall(match.group(1), match.group(2), custom=True) if match else None


def _partial_suffix(text: str, marker: str) -> int:
    for size in range(min(len(marker) - 1, len(text)), 0, -1):
        if text.endswith(marker[:size]):
            return size
    return 0


def _parse_call(raw: str) -> ParsedCall | None:
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    arguments = data.get("arguments", {})
    if isinstance(arguments, str):
        return ParsedCall(data["name"], arguments)
    return ParsedCall(data["name"], json.dumps(arguments, ensure_ascii=False, separators=(",", ":")))


def tool_call_entry(call: ParsedCall) -> dict[str, Any]:
    if call.custom:
        return {"id": random_id("call_", 24), "type": "custom", "custom": {"name": call.name, "input": call.arguments}}
    return {"id": random_id("call_", 24), "type": "function", "function": {"name": call.name, "arguments": call.arguments}}

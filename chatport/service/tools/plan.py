"""What a request's tools and ``tool_choice`` mean, checked as OpenAI checks them: which
functions and custom tools exist, which the model may call, and whether it must."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import llguidance as llg

from chatport.protocol import requests as rq
from chatport.protocol.errors import InvalidRequestError
from chatport.service.bounds import check_lark, check_regex, check_schema
from chatport.service.checks import check_name
from chatport.service.strict_schema import StrictSchemaCheck


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
    param: str = ""  # where the definition is in the request, for errors

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

    @property
    def callable_functions(self) -> list[FunctionSpec]:
        names = set(self.callable)
        return [f for f in self.functions if f.name in names]

    @property
    def callable_customs(self) -> list[CustomSpec]:
        names = set(self.callable)
        return [c for c in self.customs if c.name in names]


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

    seen: dict[str, str] = {}
    customs: list[CustomSpec] = []
    entries: list[tuple[str, str, str | None, dict[str, Any] | None, bool]] = []
    if request.functions is not None:
        entries = [(f"functions[{i}]", f.name, f.description, f.parameters, False) for i, f in enumerate(request.functions)]
    for i, tool in enumerate(request.tools or []):
        if isinstance(tool, rq.CustomTool):
            customs.append(_custom_spec(tool.custom, f"tools[{i}].custom", seen))
        else:
            fn = tool.function
            entries.append((f"tools[{i}].function", fn.name, fn.description, fn.parameters, bool(fn.strict)))
    functions = [_function_spec(*entry, seen) for entry in entries]

    names = [f.name for f in functions] + [c.name for c in customs]
    if legacy:
        mode, callable_names = _legacy_choice(request.function_call, names)
    else:
        mode, callable_names = _choice(request.tool_choice, names, {c.name for c in customs})
    # A named choice asks for that one call; the legacy API never made more than one.
    named = isinstance(request.tool_choice, (rq.NamedFunctionChoice, rq.NamedCustomChoice))
    parallel = not (legacy or named) and request.parallel_tool_calls is not False
    template_tools = [
        {"type": "function", "function": {"name": f.name, "description": f.description or "", "parameters": f.parameters}}
        for f in functions
    ]
    return ToolPlan(functions, customs, callable_names, mode, parallel, legacy, template_tools)


def _function_spec(
    where: str, name: str, description: str | None, parameters: dict[str, Any] | None, strict: bool, seen: dict[str, str]
) -> FunctionSpec:
    _claim_name(name, where, seen)
    params = parameters if parameters is not None else {"type": "object", "properties": {}}
    check_schema(params, f"{where}.parameters")
    if strict:
        try:
            StrictSchemaCheck(name).check(params)
        except InvalidRequestError as exc:
            raise InvalidRequestError(
                exc.message.replace("response_format", "function", 1), param=f"{where}.parameters", code=None
            ) from None
    return FunctionSpec(name, description, params, strict)


def _claim_name(name: str, where: str, seen: dict[str, str]) -> None:
    check_name(name, f"{where}.name")
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
    param = f"{where}.format.grammar.definition"
    definition = fmt.grammar.definition
    # Bounded here; compiled (and so checked) only in the grammar workers, off the event loop.
    (check_lark if fmt.grammar.syntax == "lark" else check_regex)(definition, param, custom.name)
    return CustomSpec(custom.name, custom.description, fmt.grammar.syntax, definition, param)


def custom_grammar_error(spec: CustomSpec, detail: str) -> InvalidRequestError:
    """How a custom tool's grammar that does not compile is reported."""
    return InvalidRequestError(
        f"Invalid {spec.syntax} grammar for custom tool '{spec.name}': {detail}", param=spec.param, code="invalid_grammar"
    )


def _legacy_choice(choice: str | rq.NamedFunction | None, names: list[str]) -> tuple[str, list[str]]:
    if choice is None or choice == "auto":
        return "auto", names
    if choice == "none":
        return "none", []
    assert isinstance(choice, rq.NamedFunction)
    return "required", [_known(choice.name, names, "function_call")]


def _choice(choice: rq.ToolChoice | None, names: list[str], customs: set[str]) -> tuple[str, list[str]]:
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
                'Invalid value for \'tool_choice.allowed_tools.tools\': expected {"type": "function", "function": {"name": ...}} '
                'or {"type": "custom", "custom": {"name": ...}}.',
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


def tools_error(detail: str) -> InvalidRequestError:
    """How a tool grammar that does not compile is reported."""
    return InvalidRequestError(f"Invalid tool definitions: {detail}", param="tools", code=None)

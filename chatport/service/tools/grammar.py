"""The grammars a tool plan imposes: from the first token when a call is required, or
switched on by a trigger in auto mode. Function calls follow the format's rules; custom
tool calls are added alongside, each input under its tool's own grammar."""

from __future__ import annotations

import json

import llguidance as llg

from chatport.service.tools.format import (
    CUSTOM_TRIGGER,
    MAX_PARALLEL_CALLS,
    Literal,
    ToolCallFormat,
    Trigger,
    custom_rules,
)
from chatport.service.tools.plan import ToolPlan


def tool_grammars(plan: ToolPlan, fmt: ToolCallFormat, literal: Literal) -> tuple[str | None, list[tuple[str, str]]]:
    """(grammar from the first token, [(trigger, grammar once triggered), ...])."""
    if not plan.active:
        return None, []
    if plan.mode == "required":
        return _grammar(plan, fmt, literal, Trigger("", "call")), []
    triggers = list(fmt.triggers()) if plan.callable_functions else []
    if plan.callable_customs:
        triggers.append(CUSTOM_TRIGGER)
    return None, [(t.text, _grammar(plan, fmt, literal, t)) for t in triggers]


def _grammar(plan: ToolPlan, fmt: ToolCallFormat, literal: Literal, first: Trigger) -> str:
    functions, customs = plan.callable_functions, plan.callable_customs
    repeat = plan.parallel and fmt.repeatable and first.repeat
    more = f" call{{0,{MAX_PARALLEL_CALLS - 1}}}" if repeat else ""
    lines = [
        f"start: {first.rule}{more}",
        "call: " + " | ".join((["fcall"] if functions else []) + (["ccall"] if customs else [])),
    ]
    if functions:
        lines += fmt.function_rules(functions, plan.parallel, literal)
    if customs:
        lines += custom_rules(customs)
    main = "\n".join(lines)
    if not customs:
        return str(llg.LLMatcher.grammar_from_lark(main))
    grammars = [{"lark_grammar": main}] + [{"name": f"input_{i}", "lark_grammar": c.subgrammar()} for i, c in enumerate(customs)]
    return json.dumps({"grammars": grammars})

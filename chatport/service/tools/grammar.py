"""The grammars a tool plan imposes: from the first token when a call is required, switched
on by a trigger in auto mode, or beside a structured answer (the answer under its schema,
or calls). Function calls follow the format's rules; custom tool calls are added
alongside, each input under its tool's own grammar."""

from __future__ import annotations

import json
from typing import Any

import llguidance as llg

from chatport.service.tools.format import (
    MAX_PARALLEL_CALLS,
    Literal,
    ToolCallFormat,
    custom_rules,
    custom_trigger,
)
from chatport.service.tools.plan import ToolPlan


def required_grammar(plan: ToolPlan, fmt: ToolCallFormat, literal: Literal) -> str:
    """A call from the first token (``tool_choice`` ``required`` or a named tool)."""
    return _grammar(plan, fmt, literal, f"start: call{_more(plan, fmt)}")


def triggered_grammars(plan: ToolPlan, fmt: ToolCallFormat, literal: Literal) -> list[tuple[str, str]]:
    """Auto mode: [(trigger pattern, grammar from the trigger on), ...]."""
    triggers = list(fmt.triggers([f.name for f in plan.callable_functions])) if plan.callable_functions else []
    if plan.callable_customs:
        triggers.append(custom_trigger([c.name for c in plan.callable_customs]))
    return [(t.pattern, _grammar(plan, fmt, literal, f"start: {t.rule}{_more(plan, fmt) if t.repeat else ''}")) for t in triggers]


def answer_or_calls_grammar(plan: ToolPlan, fmt: ToolCallFormat, literal: Literal, answer: dict[str, Any]) -> str:
    """Auto mode beside ``response_format``: from the first token, either the answer under
    its schema or calls (tagged, or bare where the format reads bare calls)."""
    bare = f" | {fmt.bare_rule}" if fmt.bare_rule and plan.callable_functions else ""
    start = f"start: answer | call{_more(plan, fmt)}{bare}"
    return _grammar(plan, fmt, literal, start, f"answer: %json {json.dumps(answer)}")


def _more(plan: ToolPlan, fmt: ToolCallFormat) -> str:
    return f" call{{0,{MAX_PARALLEL_CALLS - 1}}}" if plan.parallel and fmt.repeatable else ""


def _grammar(plan: ToolPlan, fmt: ToolCallFormat, literal: Literal, *start: str) -> str:
    functions, customs = plan.callable_functions, plan.callable_customs
    lines = [*start, "call: " + " | ".join((["fcall"] if functions else []) + (["ccall"] if customs else []))]
    if functions:
        lines += fmt.function_rules(functions, plan.parallel, literal)
    if customs:
        lines += custom_rules(customs)
    main = "\n".join(lines)
    if not customs:
        return str(llg.LLMatcher.grammar_from_lark(main))
    grammars = [{"lark_grammar": main}] + [{"name": f"input_{i}", "lark_grammar": c.subgrammar()} for i, c in enumerate(customs)]
    return json.dumps({"grammars": grammars})

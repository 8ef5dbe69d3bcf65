"""How an answer is constrained, decided in one place: by ``response_format``, by the
request's tools (required from the first token, switched on by a trigger in auto mode,
or beside a structured answer), or not at all; which control tokens stay visible in the
output; and where the parser looks for calls.

The precedence, as OpenAI's models behave:

- a required call (``tool_choice`` ``required`` or a named tool) decodes under the tools'
  grammar from the first token; ``response_format`` cannot apply to a call;
- with optional calls (``auto``) and no ``response_format``, the answer is free text until
  it writes a call's opening up to a listed tool's whole name (a trigger), from where the
  call follows its grammar;
- with ``response_format`` and optional calls, the grammar from the first token is the
  structured answer or calls (tagged, or bare objects where the format reads those: a
  small model that calls writes ``{"name": ...`` as often as the tag); an object is a call
  only when it names a listed tool with its arguments, so the answer is one unless its
  schema itself has a ``name`` holding a tool's name and an ``arguments`` key;
- a thinking model's think block comes first and is never constrained: the engine starts
  the grammar after it (``Thinking``); its tags are among the visible control tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import llguidance as llg

from chatport.protocol.backend import Vocabulary
from chatport.protocol.errors import InvalidRequestError
from chatport.service.structured import schema_grammar
from chatport.service.tools.format import CUSTOM_BLOCK, CallBlock, Literal, ToolCallFormat
from chatport.service.tools.grammar import answer_or_calls_grammar, required_grammar, triggered_grammars
from chatport.service.tools.parser import CallStart
from chatport.service.tools.plan import ToolPlan, custom_grammar_error, tools_error

GrammarError = Callable[[str], InvalidRequestError]


@dataclass(frozen=True)
class DecodingPlan:
    grammar: str | None  # followed from the first token of the answer (after any think block)
    grammar_error: GrammarError  # how that grammar failing to compile is reported
    lazy: tuple[tuple[str, str], ...]  # (trigger pattern, grammar once triggered), the earliest match wins
    visible: frozenset[int]  # control tokens whose text is part of the output
    blocks: tuple[CallBlock, ...] = ()  # where the parser reads calls (none: no calls)
    forced: tuple[CallStart, ...] = ()  # a call is required: the calls it may be, for one cut before its name
    # Grammars compiled on their own first, so that one that fails is reported as its own
    # parameter's error (a custom tool's grammar, a response_format schema beside tools).
    checks: tuple[tuple[str, GrammarError], ...] = ()


def plan_decoding(
    answer: dict[str, Any] | None,
    answer_error: GrammarError,
    tools: ToolPlan | None,
    fmt: ToolCallFormat,
    literal: Literal,
    vocabulary: Vocabulary,
    reasoning_visible: frozenset[int] = frozenset(),
) -> DecodingPlan:
    """``answer``: the ``response_format`` schema as it goes into a grammar (None: text);
    ``literal``: how a call marker is written in a grammar; ``reasoning_visible``: a think
    block's tags."""
    if tools is None or not tools.active:
        grammar = schema_grammar(answer, answer_error) if answer is not None else None
        return DecodingPlan(grammar, answer_error, (), reasoning_visible)
    visible = frozenset(vocabulary.special[m] for m in fmt.markers if m in vocabulary.control) | reasoning_visible
    names = [f.name for f in tools.callable_functions]
    custom_checks: tuple[tuple[str, GrammarError], ...] = tuple(
        (str(llg.LLMatcher.grammar_from_lark(c.subgrammar())), partial(custom_grammar_error, c))
        for c in tools.customs
        if c.syntax != "text"
    )
    blocks = (*(fmt.blocks(names) if names else ()), CUSTOM_BLOCK)
    if tools.mode == "required":
        forced = (*(CallStart(n) for n in names), *(CallStart(c.name, custom=True) for c in tools.callable_customs))
        return DecodingPlan(required_grammar(tools, fmt, literal), tools_error, (), visible, blocks, forced, custom_checks)
    if answer is not None:
        grammar = answer_or_calls_grammar(tools, fmt, literal, answer)
        checks = ((schema_grammar(answer, answer_error), answer_error), *custom_checks)
        return DecodingPlan(grammar, tools_error, (), visible, blocks, checks=checks)
    return DecodingPlan(None, tools_error, tuple(triggered_grammars(tools, fmt, literal)), visible, blocks, checks=custom_checks)

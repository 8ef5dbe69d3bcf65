"""How an answer is constrained, decided in one place: by ``response_format``, by the
request's tools (required from the first token, or switched on by a trigger in auto
mode), or not at all, and which control tokens stay visible in the output.

The precedence, as OpenAI's models behave:

- a required call (``tool_choice`` ``required`` or a named tool) decodes under the tools'
  grammar from the first token; ``response_format`` cannot apply to a call;
- with optional calls (``auto``) and no ``response_format``, the answer is free text until
  it writes a call's opening (a trigger), from where that call follows its grammar;
- with ``response_format`` and optional calls, the structured answer's grammar holds from
  the first token and the optional calls are left out;
- a thinking model's think block comes first and is never constrained: the engine starts
  the grammar after it (``Thinking``); its tags are among the visible control tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chatport.protocol.backend import Vocabulary
from chatport.protocol.errors import InvalidRequestError
from chatport.service.tools.format import Literal, ToolCallFormat
from chatport.service.tools.grammar import tool_grammars
from chatport.service.tools.plan import ToolPlan, tools_error

GrammarError = Callable[[str], InvalidRequestError]


@dataclass(frozen=True)
class DecodingPlan:
    grammar: str | None  # followed from the first token of the answer (after any think block)
    grammar_error: GrammarError  # how that grammar failing to compile is reported
    lazy: tuple[tuple[str, str], ...]  # (trigger, grammar once triggered), the earliest trigger wins
    visible: frozenset[int]  # control tokens whose text is part of the output


def plan_decoding(
    schema_grammar: str | None,
    schema_error: GrammarError,
    tools: ToolPlan | None,
    fmt: ToolCallFormat,
    literal: Literal,
    vocabulary: Vocabulary,
    reasoning_visible: frozenset[int] = frozenset(),
) -> DecodingPlan:
    """``schema_grammar``: the ``response_format`` grammar (None: text); ``literal``: how a
    call marker is written in a grammar; ``reasoning_visible``: a think block's tags."""
    grammar, error = schema_grammar, schema_error
    lazy: list[tuple[str, str]] = []
    visible: frozenset[int] = frozenset()
    if tools is not None and tools.active:
        required, lazy = tool_grammars(tools, fmt, literal)
        if required is not None:
            grammar, error = required, tools_error  # a call from the first token
        elif grammar is not None:
            lazy = []  # a structured answer and its grammar win over optional calls
        visible = frozenset(vocabulary.special[m] for m in fmt.markers if m in vocabulary.control)
    return DecodingPlan(grammar, error, tuple(lazy), visible | reasoning_visible)

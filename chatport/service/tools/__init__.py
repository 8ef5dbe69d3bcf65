"""Tools: the plan a request's tools make (``plan``), the call formats of model families
(one class each: ``hermes``, ``llama3``, ``mistral``), the grammars they impose
(``grammar``) and the parser that reads calls back (``parser``).

A new format is a ``ToolCallFormat`` subclass, recognized from the chat template in
``format_for``.
"""

from __future__ import annotations

from typing import Any

from chatport.service.tools.format import ToolCallFormat, custom_note
from chatport.service.tools.hermes import CALL_OPEN, GenericFormat, HermesFormat
from chatport.service.tools.llama3 import Llama3JsonFormat
from chatport.service.tools.mistral import MistralFormat
from chatport.service.tools.plan import ToolPlan

__all__ = ["ToolCallFormat", "add_tool_notes", "format_for"]


def format_for(template: str | None) -> ToolCallFormat:
    """The call format a chat template speaks; the generic one when it renders no tools or
    its syntax is not known here."""
    source = template or ""
    if "tools" not in source:
        return GenericFormat()
    if "[TOOL_CALLS]" in source:
        return MistralFormat()
    if CALL_OPEN in source:
        return HermesFormat()
    if "<|start_header_id|>" in source and '"parameters"' in source:
        return Llama3JsonFormat()
    return GenericFormat()


def add_tool_notes(messages: list[dict[str, Any]], plan: ToolPlan, fmt: ToolCallFormat) -> list[dict[str, Any]]:
    """Describe in the system message what the template cannot: the functions for the
    generic format, custom tools always."""
    if not plan.active:
        return messages
    notes = []
    functions = plan.callable_functions
    if functions and (note := fmt.note(functions)):
        notes.append(note)
    if plan.callable_customs:
        notes.append(custom_note(plan.callable_customs))
    if not notes:
        return messages
    note = "\n\n".join(notes)
    if messages and messages[0]["role"] == "system":
        return [{**messages[0], "content": f"{messages[0]['content']}\n\n{note}"}, *messages[1:]]
    return [{"role": "system", "content": note}, *messages]

"""The bounds on what a request may hand to the grammar compiler and to per-request work
(service/bounds.py), without a server: every grammar and schema within them compiles on
the compiler's threads without overflowing their stack (a crash would end this test run),
everything over them is refused by name before any compile, and the size checks refuse
floods by count."""

from __future__ import annotations

import contextlib
import json

import llguidance as llg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatport.catalog import default_model
from chatport.engine.constraint import COMPILE_STACK_BYTES, Constraint
from chatport.engine.llama import LlamaModel
from chatport.protocol.errors import InvalidRequestError
from chatport.service.bounds import (
    MAX_CONTENT_PARTS,
    MAX_GRAMMAR_CHARS,
    MAX_GRAMMAR_NESTING,
    MAX_GRAMMAR_RULES,
    MAX_SCHEMA_DEFINITIONS,
    MAX_SCHEMA_DEPTH,
    check_lark,
    check_regex,
    check_schema,
    check_sizes,
    lark_nesting,
    regex_nesting,
)


@pytest.fixture(scope="module")
def tokenizer():
    return LlamaModel(default_model().path, vocab_only=True).lltokenizer


def compiles_or_says_why(tokenizer, grammar: str) -> None:
    """Compile on the compiler's threads: a ValueError is a refusal, anything else (or a
    crash of this process) a failure of the bounds."""
    with contextlib.suppress(ValueError):
        Constraint(tokenizer, grammar)


@st.composite
def lark_grammars(draw) -> str:
    """Grammars within the bounds, shaped to recurse: chains of rules, each rule's body
    nested in brackets and alternatives, some rules referring back."""
    rules = draw(st.integers(1, MAX_GRAMMAR_RULES - 2))
    nesting = draw(st.integers(0, 8))
    back = draw(st.booleans())
    lines = ["start: r0"]
    for i in range(rules):
        target = f"r{i + 1}"
        body = f'"a" {target} | "b"' if not back or i % 7 else f'"a" {target} | r0 "c" | "b"'
        lines.append(f"r{i}: " + "(" * nesting + body + ")" * nesting)
    lines.append(f'r{rules}: "z"')
    return "\n".join(lines)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(grammar=lark_grammars())
def test_every_lark_grammar_within_the_bounds_compiles_on_the_compilers_stack(tokenizer, grammar):
    check_lark(grammar, "p", "t")  # within the bounds
    compiles_or_says_why(tokenizer, llg.LLMatcher.grammar_from_lark(grammar))


@st.composite
def schemas(draw) -> dict:
    """Schemas within the bounds, shaped to recurse: chains of definitions through $ref,
    objects nested inline."""
    definitions = draw(st.integers(1, MAX_SCHEMA_DEFINITIONS))
    inline = draw(st.integers(0, 10))
    defs = {}
    for i in range(definitions):
        node: dict = {"$ref": f"#/$defs/d{i + 1}"} if i + 1 < definitions else {"type": "string", "maxLength": 2}
        for _ in range(inline if i == 0 else 0):
            node = {"type": "object", "properties": {"x": node}, "required": ["x"]}
        defs[f"d{i}"] = node
    return {"$ref": "#/$defs/d0", "$defs": defs}


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(schema=schemas())
def test_every_schema_within_the_bounds_compiles_on_the_compilers_stack(tokenizer, schema):
    check_schema(schema, "p")
    compiles_or_says_why(tokenizer, llg.LLMatcher.grammar_from_json_schema(schema))


def test_the_deepest_chains_allowed_compile_and_the_stack_fits_them(tokenizer):
    # The longest rule chain the size allows (about 4 characters a rule) and the longest
    # definition chain: both deeper than a default 8 MiB stack holds (measured: ~2,500 rules,
    # ~900 definitions), both far inside COMPILE_STACK_BYTES.
    assert COMPILE_STACK_BYTES >= 32 * 8 * 1024 * 1024
    rules = MAX_GRAMMAR_RULES - 2
    chain = "\n".join(["start: r0", *(f"r{i}: r{i + 1}" for i in range(rules)), f'r{rules}: "x"'])
    check_lark(chain, "p", "t")
    Constraint(tokenizer, llg.LLMatcher.grammar_from_lark(chain))
    n = MAX_SCHEMA_DEFINITIONS
    defs = {
        f"d{i}": {"type": "object", "properties": {"a": {"$ref": f"#/$defs/d{i + 1}"}}, "required": ["a"]} for i in range(n - 1)
    }
    defs[f"d{n - 1}"] = {"type": "string"}
    schema = {"$ref": "#/$defs/d0", "$defs": defs}
    check_schema(schema, "p")
    Constraint(tokenizer, llg.LLMatcher.grammar_from_json_schema(schema))


@given(extra=st.integers(1, 50))
def test_more_rules_than_allowed_are_refused_before_compiling(extra):
    rules = MAX_GRAMMAR_RULES + extra
    grammar = "\n".join(f"r{i}: r{i + 1}" for i in range(rules))
    with pytest.raises(InvalidRequestError) as caught:
        check_lark(grammar, "tools[0].custom.format.grammar.definition", "t")
    assert caught.value.code == "invalid_grammar" and f"{rules} rules" in caught.value.message


@given(depth=st.integers(MAX_GRAMMAR_NESTING + 1, 200), opener=st.sampled_from("([{"))
def test_deeper_brackets_than_allowed_are_refused(depth, opener):
    closer = {"(": ")", "[": "]", "{": "}"}[opener]
    with pytest.raises(InvalidRequestError, match=f"nests {depth} levels"):
        check_lark("start: " + opener * depth + '"a"' + closer * depth, "p", "t")
    with pytest.raises(InvalidRequestError, match=f"nests {depth} levels"):
        check_regex("(" * depth + "a" + ")" * depth, "p", "t")


@given(text=st.text(alphabet="()[]{}", max_size=40))
def test_brackets_inside_literals_do_not_count(text):
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    assert lark_nesting(f'start: "{escaped}"') == 0
    assert lark_nesting(f"start: /{text.replace('/', '')}/") == 0
    assert regex_nesting("[" + text.replace("]", "") + "]") == 0
    assert regex_nesting("\\(" * 50) == 0


def test_a_grammar_longer_than_allowed_is_refused_by_its_length():
    with pytest.raises(InvalidRequestError) as caught:
        check_lark('start: "' + "a" * MAX_GRAMMAR_CHARS + '"', "p", "t")
    assert caught.value.code == "string_above_max_length" and caught.value.param == "p"


@given(depth=st.integers(MAX_SCHEMA_DEPTH + 1, 300))
def test_schemas_deeper_than_allowed_are_refused_without_recursion(depth):
    schema: dict = {"type": "string"}
    for _ in range(depth):
        schema = {"items": schema}
    with pytest.raises(InvalidRequestError, match=f"more than {MAX_SCHEMA_DEPTH} levels"):
        check_schema(schema, "response_format")


def test_definitions_are_counted_wherever_they_are():
    nested = {"properties": {"a": {"$defs": {f"x{i}": {} for i in range(MAX_SCHEMA_DEFINITIONS)}}}, "definitions": {"y": {}}}
    with pytest.raises(InvalidRequestError, match="more than 1000 definitions"):
        check_schema(nested, "p")
    check_schema({"$defs": {f"x{i}": {} for i in range(MAX_SCHEMA_DEFINITIONS)}}, "p")


def body(**fields) -> dict:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}


def test_sizes_refuse_floods_by_count():
    tool = {"type": "function", "function": {"name": "f"}}
    check_sizes(body(tools=[tool] * 128), max_messages=10)
    with pytest.raises(InvalidRequestError) as caught:
        check_sizes(body(tools=[tool] * 129), max_messages=10)
    assert caught.value.param == "tools" and caught.value.code == "array_above_max_length"
    with pytest.raises(InvalidRequestError, match="maximum length 10, but got an array with length 11"):
        check_sizes(body(messages=[{"role": "user", "content": "x"}] * 11), max_messages=10)
    parts = [{"type": "text", "text": ""}] * (MAX_CONTENT_PARTS // 2)
    with pytest.raises(InvalidRequestError) as caught:
        check_sizes(body(messages=[{"role": "user", "content": parts}] * 3), max_messages=10)
    assert caught.value.param == "messages[2].content"
    with pytest.raises(InvalidRequestError) as caught:
        check_sizes(
            body(messages=[{"role": "user", "content": [{"type": "text", "text": "x" * (10 * 2**20 + 1)}]}]), max_messages=10
        )
    assert caught.value.param == "messages[0].content[0].text" and caught.value.code == "string_above_max_length"
    check_sizes({"messages": "not a list", "tools": {"not": "a list"}}, max_messages=10)  # validation names these


def test_custom_tool_grammars_are_bounded_in_the_tool_plan():
    from chatport.protocol.requests import ChatCompletionRequest
    from chatport.service.tools.plan import plan_tools

    grammar = "\n".join(f"r{i}: r{i + 1}" for i in range(MAX_GRAMMAR_RULES + 1))
    tool = {
        "type": "custom",
        "custom": {"name": "c", "format": {"type": "grammar", "grammar": {"syntax": "lark", "definition": grammar}}},
    }
    with pytest.raises(InvalidRequestError) as caught:
        plan_tools(ChatCompletionRequest.model_validate(body(tools=[tool])))
    assert caught.value.param == "tools[0].custom.format.grammar.definition"
    deep = {"type": "object", "properties": {"a": {}}}
    for _ in range(40):
        deep = {"type": "object", "properties": {"a": deep}}
    function = {"type": "function", "function": {"name": "f", "parameters": deep}}
    with pytest.raises(InvalidRequestError) as caught:
        plan_tools(ChatCompletionRequest.model_validate(body(tools=[function])))
    assert caught.value.param == "tools[0].function.parameters"
    json.dumps(deep)  # (a depth Python's own walkers still take)

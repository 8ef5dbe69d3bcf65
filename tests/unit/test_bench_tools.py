"""``chatport bench tools``'s pieces without a server: BFCL's entries as OpenAI tools, the
subsample, and the scoring of answers by BFCL's own AST checker."""

from __future__ import annotations

import json

from chatport.bench.tools import Answer, converted, load, openai_tool, score


def test_bfcl_types_become_json_schema_and_dotted_names_underscores():
    entry = load("simple", 400)[1]  # math.factorial
    tool = openai_tool(entry.functions[0])
    assert tool["function"]["name"] == "math_factorial"
    assert tool["function"]["parameters"]["type"] == "object"
    schema = converted({"type": "dict", "properties": {"x": {"type": "float"}, "p": {"type": "tuple", "items": {"type": "any"}}}})
    assert schema == {"type": "object", "properties": {"x": {"type": "number"}, "p": {"type": "array", "items": {}}}}


def test_the_subsample_is_evenly_spaced_and_the_same_every_time():
    first, again = load("multiple", 20), load("multiple", 20)
    assert [e.id for e in first] == [e.id for e in again] and len(first) == 20
    assert first[0].id == "multiple_0" and first[1].id == "multiple_10"


def test_answers_are_scored_by_bfcls_checker():
    entry = load("simple", 400)[0]  # calculate_triangle_area(base=10, height=5)
    right = Answer("", [("calculate_triangle_area", json.dumps({"base": 10, "height": 5}))])
    wrong = Answer("", [("calculate_triangle_area", json.dumps({"base": 10, "height": 6}))])
    broken = Answer("", [("calculate_triangle_area", '{"base": 10,')])
    leaked = Answer('<tool_call>{"name": "calculate_triangle_area"', [])
    assert score(entry, right).correct
    assert not score(entry, wrong).correct
    assert score(entry, broken).malformed == 1 and not score(entry, broken).correct
    assert score(entry, leaked).leaked and not score(entry, leaked).correct


def test_dotted_names_are_restored_for_the_checker_and_other_tools_are_wrong():
    entry = load("simple", 400)[1]  # math.factorial(number=5)
    assert score(entry, Answer("", [("math_factorial", '{"number": 5}')])).correct
    multiple = load("multiple", 200)[0]
    other = [f["name"] for f in multiple.functions if f["name"] not in {n for a in multiple.answer or [] for n in a}]
    assert score(multiple, Answer("", [(other[0].replace(".", "_"), "{}")])).wrong_tool == 1


def test_irrelevance_is_right_when_no_call_is_made():
    entry = load("irrelevance", 240)[0]
    assert score(entry, Answer("I cannot do that with these tools.", [])).correct
    assert not score(entry, Answer("", [(entry.tools[0]["function"]["name"], "{}")])).correct

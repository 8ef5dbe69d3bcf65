"""Chat chunks as the Responses API's events (service/responses/events.py): items opened,
grown and closed in the order the model wrote them, numbered, and ending with exactly the
items the whole response has."""

from __future__ import annotations

from chatport.protocol.response_requests import CreateResponseRequest
from chatport.protocol.validation import validate
from chatport.service.responses.events import ResponseEvents
from chatport.service.responses.output import ItemIds, ResponseShape

LOGPROB = {"token": "Hi", "logprob": -0.1, "bytes": [72, 105], "top_logprobs": []}


def chunk(delta=None, finish=None, logprobs=None):
    choice = {"index": 0, "delta": delta or {}, "finish_reason": finish}
    if logprobs is not None:
        choice["logprobs"] = {"content": logprobs, "refusal": None}
    return {"choices": [choice]}


CHUNKS = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"reasoning_content": "Think"}),
    chunk({"reasoning_content": "ing."}),
    chunk({"content": "Hi"}, logprobs=[LOGPROB]),
    chunk({"content": " there."}),
    chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": " 1}"}}]}),
    chunk(finish="tool_calls"),
    {"choices": [], "usage": {}},
]
COMPLETION = {
    "choices": [
        {
            "index": 0,
            "finish_reason": "tool_calls",
            "logprobs": {"content": [LOGPROB], "refusal": None},
            "message": {
                "role": "assistant",
                "content": "Hi there.",
                "reasoning_content": "Thinking.",
                "annotations": [],
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}],
            },
        }
    ],
    "usage": {
        "prompt_tokens": 10,
        "completion_tokens": 7,
        "total_tokens": 17,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 3},
    },
    "service_tier": "default",
}


def written(chunks):
    events = ResponseEvents(ItemIds(), obfuscate=False)
    out = [e for c in chunks for e in events.chunk(c)] + events.close()
    return events, out


def test_items_open_grow_and_close_in_order():
    _, events = written(CHUNKS)
    assert [e["type"] for e in events] == [
        "response.output_item.added",
        "response.content_part.added",
        "response.reasoning_text.delta",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["output_index"] for e in events if e["type"] == "response.output_item.added"] == [0, 1, 2]
    text = next(e for e in events if e["type"] == "response.output_text.done")
    assert text["text"] == "Hi there." and text["logprobs"] == [LOGPROB]
    args = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert (args["name"], args["arguments"]) == ("f", '{"a": 1}')
    added = next(e for e in events if e["type"] == "response.output_item.added" and e["item"]["type"] == "function_call")
    assert added["item"]["status"] == "in_progress" and added["item"]["call_id"] == "call_1"


def test_the_stream_ends_with_the_whole_responses_items():
    stream, events = written(CHUNKS)
    shape = ResponseShape(validate(CreateResponseRequest, {"model": "m", "input": "x"}), "resp_1", 0, store=False)
    whole = shape.finished(COMPLETION, ItemIds(stream.given))
    assert [e["item"] for e in events if e["type"] == "response.output_item.done"] == whole["output"]
    assert whole["usage"]["output_tokens_details"] == {"reasoning_tokens": 3}
    assert whole["status"] == "completed" and whole["incomplete_details"] is None


def test_a_cut_answer_is_incomplete_in_both():
    chunks = [chunk({"role": "assistant", "content": ""}), chunk({"content": "Hel"}), chunk(finish="length")]
    stream, events = written(chunks)
    completion = {
        **COMPLETION,
        "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "Hel"}}],
    }
    shape = ResponseShape(validate(CreateResponseRequest, {"model": "m", "input": "x"}), "resp_1", 0, store=False)
    whole = shape.finished(completion, ItemIds(stream.given))
    assert whole["status"] == "incomplete" and whole["incomplete_details"] == {"reason": "max_output_tokens"}
    assert events[-1]["item"] == whole["output"][0] and whole["output"][0]["status"] == "incomplete"


def test_annotations_are_added_to_the_open_message():
    citation = {"type": "url_citation", "url_citation": {"start_index": 0, "end_index": 4, "url": "u", "title": "t"}}
    _, events = written([chunk({"content": "[t](u)"}), chunk({"annotations": [citation]}), chunk(finish="stop")])
    added = next(e for e in events if e["type"] == "response.output_text.annotation.added")
    assert added["annotation"] == {"type": "url_citation", "start_index": 0, "end_index": 4, "url": "u", "title": "t"}
    assert added["annotation_index"] == 0
    assert events[-1]["item"]["content"][0]["annotations"] == [added["annotation"]]


def test_delta_events_are_padded_unless_asked_not_to():
    events = ResponseEvents(ItemIds())
    (delta,) = [e for e in events.chunk(chunk({"content": "a"})) if e["type"] == "response.output_text.delta"]
    assert 1 <= len(delta["obfuscation"]) <= 16


def test_responses_and_events_match_the_spec():
    """The whole response and each event, checked against OpenAI's schemas."""
    import os

    import jsonschema
    import yaml

    spec_path = os.path.join(os.path.dirname(__file__), "..", "spec", "responses-openapi.yaml")
    with open(spec_path) as f:
        spec = yaml.safe_load(f)

    def check(value, name):
        jsonschema.Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": spec["components"]}).validate(
            value
        )

    stream, events = written(CHUNKS)
    request = {
        "model": "m",
        "input": "x",
        "include": ["message.output_text.logprobs"],
        "tools": [{"type": "function", "name": "f"}],
    }
    shape = ResponseShape(validate(CreateResponseRequest, request), "resp_1", 0, store=True)
    check(shape.finished(COMPLETION, ItemIds(stream.given)), "Response")
    check(shape.response("in_progress", []), "Response")
    for event in events:
        check(event, "ResponseStreamEvent")


def test_a_namespaced_call_names_its_namespace_streamed_and_whole():
    request = {
        "model": "m",
        "input": "x",
        "tools": [{"type": "namespace", "name": "crm", "description": "d", "tools": [{"type": "function", "name": "f"}]}],
    }
    shape = ResponseShape(validate(CreateResponseRequest, request), "resp_1", 0, store=False, namespaces={"f": "crm"})
    events = ResponseEvents(ItemIds(), obfuscate=False, namespaces=shape.namespaces)
    written_events = [e for c in CHUNKS for e in events.chunk(c)]
    done = [e["item"] for e in written_events if e["type"] == "response.output_item.done"]
    whole = shape.finished(COMPLETION, ItemIds(events.given))
    assert done[-1]["namespace"] == "crm" and whole["output"][-1] == done[-1]

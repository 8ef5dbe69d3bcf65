"""A Responses request as the chat request it asks for (service/responses/translate.py):
items to messages, options to their chat names, and chat errors renamed to the Responses
request's parameters."""

from __future__ import annotations

import pytest

from chatport.protocol.errors import InvalidRequestError
from chatport.protocol.response_requests import CreateResponseRequest
from chatport.protocol.validation import validate
from chatport.service.responses.translate import Origins, chat_body, input_messages, items_to_messages, namespaces


def body_of(history=None, **fields):
    request = validate(CreateResponseRequest, {"model": "m", **fields})
    return chat_body(request, history or [])


def test_a_string_input_with_instructions():
    body, origins = body_of(input="Hi.", instructions="Be brief.")
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi."}]
    assert origins.of_message == ["instructions", "input"]
    assert body["store"] is False and "stream" not in body
    assert input_messages(body, origins) == [{"role": "user", "content": "Hi."}], "instructions are not carried over"


def test_items_become_messages_and_one_turns_calls_one_assistant_message():
    body, origins = body_of(
        input=[
            {
                "role": "user",
                "content": [{"type": "input_text", "text": "Look:"}, {"type": "input_image", "image_url": "data:x"}],
            },
            {"type": "reasoning", "id": "rs_1", "summary": [], "content": [{"type": "reasoning_text", "text": "Two calls."}]},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{}", "status": "completed"},
            {"type": "function_call_output", "call_id": "c1", "output": "one"},
            {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "two"}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Done.", "annotations": []}]},
        ]
    )
    user, calls, out1, out2, answer = body["messages"]
    assert user["content"] == [
        {"type": "text", "text": "Look:"},
        {"type": "image_url", "image_url": {"url": "data:x", "detail": "auto"}},
    ]
    assert [c["id"] for c in calls["tool_calls"]] == ["c1", "c2"] and calls["content"] is None
    assert calls["reasoning_content"] == "Two calls."
    assert out1 == {"role": "tool", "tool_call_id": "c1", "content": "one"}
    assert out2["content"] == [{"type": "text", "text": "two"}]
    assert answer == {"role": "assistant", "content": [{"type": "text", "text": "Done."}]}
    assert origins.of_message == ["input[0]", "input[2]", "input[4]", "input[5]", "input[6]"]


def test_an_output_needs_its_call_and_a_call_its_output():
    with pytest.raises(InvalidRequestError) as lone:
        body_of(input=[{"type": "function_call_output", "call_id": "c9", "output": "x"}])
    assert lone.value.param == "input[0]" and "c9" in lone.value.message
    with pytest.raises(InvalidRequestError) as unanswered:
        body_of(
            input=[{"role": "user", "content": "x"}, {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}]
        )
    assert unanswered.value.param == "input[1]"
    history = [{"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {}}]}]
    with pytest.raises(InvalidRequestError) as forgotten:
        body_of(history, input="And then?")
    assert forgotten.value.param == "input" and "c1" in forgotten.value.message
    _, origins = body_of(history, input=[{"type": "function_call_output", "call_id": "c1", "output": "1"}])
    assert origins.of_message == ["previous_response_id", "input[0]"]


def test_options_take_their_chat_names():
    weather = {"type": "function", "name": "w", "parameters": {"type": "object"}, "strict": True}
    body, _ = body_of(
        input="x",
        stream=True,
        max_output_tokens=64,
        include=["message.output_text.logprobs"],
        top_logprobs=3,
        reasoning={"effort": "low"},
        text={"format": {"type": "json_schema", "name": "p", "schema": {"type": "object"}, "strict": True}, "verbosity": "low"},
        tools=[
            weather,
            {"type": "custom", "name": "c", "format": {"type": "grammar", "grammar": {"definition": "x", "syntax": "regex"}}},
        ],
        tool_choice={"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "w"}]},
        temperature=0.5,
        prompt_cache_key="k",
    )
    assert body["stream"] and body["stream_options"] == {"include_usage": True, "include_obfuscation": False}
    assert (body["max_completion_tokens"], body["logprobs"], body["top_logprobs"]) == (64, True, 3)
    assert body["reasoning_effort"] == "low" and body["verbosity"] == "low"
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "p", "schema": {"type": "object"}, "strict": True},
    }
    assert body["tools"][0] == {"type": "function", "function": {"name": "w", "parameters": {"type": "object"}, "strict": True}}
    assert body["tools"][1]["custom"]["format"] == {"type": "grammar", "grammar": {"definition": "x", "syntax": "regex"}}
    assert body["tool_choice"] == {
        "type": "allowed_tools",
        "allowed_tools": {"mode": "required", "tools": [{"type": "function", "function": {"name": "w"}}]},
    }
    assert (body["temperature"], body["prompt_cache_key"]) == (0.5, "k")
    named, _ = body_of(input="x", tools=[weather], tool_choice={"type": "function", "name": "w"})
    assert named["tool_choice"] == {"type": "function", "function": {"name": "w"}}


def test_web_search_becomes_web_search_options():
    body, _ = body_of(
        input="x",
        tools=[{"type": "web_search", "search_context_size": "low", "user_location": {"type": "approximate", "country": "FR"}}],
    )
    assert body["web_search_options"] == {
        "search_context_size": "low",
        "user_location": {"type": "approximate", "approximate": {"country": "FR"}},
    }
    assert "tools" not in body


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].id"),
        ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]}, "input[0].content[0].file_id"),
        ({}, "input"),
    ],
)
def test_what_this_server_cannot_do_is_named(fields, param):
    with pytest.raises(InvalidRequestError) as refused:
        body_of(**fields)
    assert refused.value.param == param


@pytest.mark.parametrize(
    ("chat", "ours"),
    [
        ("messages[2].content[0]", "input[1].content[0]"),
        ("messages[0]", "instructions"),
        ("messages", "input"),
        ("response_format.json_schema.schema", "text.format.schema"),
        ("response_format", "text.format"),
        ("tools[1].function.parameters", "tools[1].parameters"),
        ("tools[0].custom", "tools[0]"),
        ("max_completion_tokens", "max_output_tokens"),
        ("web_search_options", "tools"),
        ("temperature", "temperature"),
    ],
)
def test_chat_errors_name_the_responses_parameter(chat, ours):
    origins = Origins(["instructions", "input[0]", "input[1]"])
    renamed = origins.rename(InvalidRequestError(f"Invalid value for '{chat}'.", param=chat, code="invalid_value"))
    assert renamed.param == ours and renamed.message == f"Invalid value for '{ours}'." and renamed.code == "invalid_value"


def test_namespaced_tools_are_flattened_and_their_errors_keep_their_path():
    ns = {
        "type": "namespace",
        "name": "crm",
        "description": "Customer records.",
        "tools": [{"type": "function", "name": "find", "parameters": {"type": "object"}}, {"type": "custom", "name": "note"}],
    }
    request = validate(CreateResponseRequest, {"model": "m", "input": "x", "tools": [{"type": "function", "name": "f"}, ns]})
    body, origins = chat_body(request, [])
    assert [t["type"] for t in body["tools"]] == ["function", "function", "custom"]
    assert body["tools"][1]["function"]["name"] == "find"
    assert namespaces(request) == {"find": "crm", "note": "crm"}
    renamed = origins.rename(InvalidRequestError("Bad 'tools[1].function.parameters'.", param="tools[1].function.parameters"))
    assert renamed.param == "tools[1].tools[0].parameters"
    twice = {**ns, "tools": [{"type": "function", "name": "f"}]}
    with pytest.raises(InvalidRequestError) as clash:
        body_of(input="x", tools=[{"type": "function", "name": "f"}, twice])
    assert clash.value.param == "tools[1].tools[0].name"


def test_codexs_client_metadata_is_taken():
    body, _ = body_of(input="x", client_metadata={"session_id": "s"})
    assert "client_metadata" not in body


def test_a_conversations_items_become_its_history():
    items = [
        {
            "id": "msg_1",
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "Hi."}],
            "status": "completed",
        },
        {"id": "ws_1", "type": "web_search_call", "status": "completed", "action": {"type": "search", "query": "q"}},
        {"id": "fc_1", "type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}", "status": "completed"},
        {"id": "fco_1", "type": "function_call_output", "call_id": "c1", "output": "1"},
        {
            "id": "msg_2",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "One.", "annotations": [], "logprobs": []}],
        },
    ]
    messages = items_to_messages(items)
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
    assert messages[1]["tool_calls"][0]["id"] == "c1" and messages[3]["content"] == [{"type": "text", "text": "One."}]
    body, _ = body_of(messages, input="And?")
    assert body["messages"][-1] == {"role": "user", "content": "And?"}

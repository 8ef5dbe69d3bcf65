import json

import pytest

from chatport.protocol.errors import InvalidRequestError
from chatport.protocol.requests import ChatCompletionRequest
from chatport.service.messages import to_template_messages
from chatport.service.template import CHATML, ChatTemplate

SMOLLM_LIKE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nDefault system<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def messages(*items):
    request = ChatCompletionRequest.model_validate({"model": "m", "messages": list(items)})
    return to_template_messages(request.messages, model="m", template=ChatTemplate(CHATML))


def test_renders_with_generation_prompt():
    out = ChatTemplate(SMOLLM_LIKE).render(messages({"role": "user", "content": "Hi"}))
    assert out == "<|im_start|>system\nDefault system<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"


def test_developer_becomes_system_for_old_templates():
    out = ChatTemplate(SMOLLM_LIKE).render(
        messages({"role": "developer", "content": "Be brief"}, {"role": "user", "content": "Hi"})
    )
    assert out.startswith("<|im_start|>system\nBe brief<|im_end|>")
    assert "Default system" not in out


def test_text_parts_are_joined_and_null_assistant_content_is_empty():
    out = messages(
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
    )
    assert out[0]["content"] == "a\nb"
    assert out[1]["content"] == "" and out[1]["tool_calls"][0]["function"]["arguments"] == {"x": 1}
    assert out[2] == {"role": "tool", "content": "42", "tool_call_id": "call_1"}


def test_unsupported_part_is_refused_by_position():
    with pytest.raises(InvalidRequestError) as info:
        messages(
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "https://x"}}]}
        )
    assert info.value.param == "messages[0].content[1]"


def test_template_exceptions_become_400():
    template = ChatTemplate("{{ raise_exception('roles must alternate') }}")
    with pytest.raises(InvalidRequestError) as info:
        template.render([])
    assert "roles must alternate" in info.value.message


def test_sandbox_blocks_attribute_escapes():
    template = ChatTemplate("{{ messages.__class__.__mro__ }}")
    with pytest.raises(InvalidRequestError):
        template.render([])


def test_tools_bos_and_tojson_are_available():
    template = ChatTemplate("{{ bos_token }}{{ tools | tojson }}", bos_token="<s>")
    assert template.render([], tools=[{"a": "é"}]) == '<s>[{"a": "é"}]'


def test_chatml_fallback():
    assert ChatTemplate(CHATML).render([{"role": "user", "content": "x"}]).endswith("<|im_start|>assistant\n")


def test_a_template_file_is_jinja_text_or_a_tokenizer_config(tmp_path):
    from chatport.service.template import TemplateFileError, read_template_file

    jinja = tmp_path / "t.jinja"
    jinja.write_text(CHATML)
    assert read_template_file(str(jinja)) == CHATML
    config = tmp_path / "tokenizer_config.json"
    config.write_text(
        json.dumps({"chat_template": [{"name": "tool_use", "template": "x"}, {"name": "default", "template": CHATML}]})
    )
    assert read_template_file(str(config)) == CHATML
    for name, text, message in [
        ("none.json", json.dumps({"bos_token": "<s>"}), "holds no chat_template string"),
        ("list.json", "[1, 2]", "is not a JSON object"),
        ("broken.jinja", "{% for m in messages %}", "is not a valid Jinja template"),
    ]:
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(TemplateFileError, match=message):
            read_template_file(str(path))
    with pytest.raises(TemplateFileError, match="cannot read"):
        read_template_file(str(tmp_path / "missing.jinja"))

"""The model's own chat template (``tokenizer.chat_template``), rendered as Hugging Face
does: a sandboxed Jinja2 environment with ``raise_exception``, ``tojson`` and
``strftime_now``, and ``add_generation_prompt``, ``bos_token``, ``eos_token``, ``tools``.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from chatport.protocol.errors import InvalidRequestError


class TemplateError(InvalidRequestError):
    pass


def _raise_exception(message: str) -> None:
    raise TemplateError(f"The model's chat template rejected the messages: {message}", param="messages")


def _tojson(value: Any, indent: int | None = None, ensure_ascii: bool = False, sort_keys: bool = False) -> str:
    return json.dumps(value, indent=indent, ensure_ascii=ensure_ascii, sort_keys=sort_keys)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


class ChatTemplate:
    def __init__(self, source: str, *, bos_token: str = "", eos_token: str = "") -> None:
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
        env.filters["tojson"] = _tojson
        env.globals["raise_exception"] = _raise_exception
        env.globals["strftime_now"] = _strftime_now
        self.source = source
        self._template = env.from_string(source)
        self.bos_token = bos_token
        self.eos_token = eos_token
        # Templates written before the developer role existed render it as system.
        self.knows_developer_role = "developer" in source
        self.renders_names = self._renders_names()

    def render(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        add_generation_prompt: bool = True,
        variables: dict[str, Any] | None = None,
    ) -> str:
        """``variables``: the template's own switches (``enable_thinking``)."""
        try:
            return self._template.render(
                **(variables or {}),
                messages=messages,
                tools=tools,
                add_generation_prompt=add_generation_prompt,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
            )
        except TemplateError:
            raise
        except jinja2.TemplateError as exc:
            raise TemplateError(f"The model's chat template could not render the messages: {exc}", param="messages") from None

    def _renders_names(self) -> bool:
        probe = "n4me9probe"
        try:
            return probe in self.render([{"role": "user", "content": "x", "name": probe}])
        except TemplateError:
            return False


# Used for GGUF files that carry no template of their own.
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] "
    "+ '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


class TemplateFileError(Exception):
    pass


def read_template_file(path: str) -> str:
    """A chat template from a file: Jinja text, or a ``tokenizer_config.json`` whose
    ``chat_template`` is a string or a list of named templates (``default`` is taken)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise TemplateFileError(f"cannot read {path}: {exc.strerror}") from None
    if os.path.splitext(path)[1] != ".json":
        source = text
    else:
        try:
            value = json.loads(text).get("chat_template")
        except (ValueError, AttributeError):
            raise TemplateFileError(f"{path} is not a JSON object") from None
        if isinstance(value, list):
            value = next((t.get("template") for t in value if isinstance(t, dict) and t.get("name") == "default"), None)
        if not isinstance(value, str):
            raise TemplateFileError(f"{path} holds no chat_template string")
        source = value
    try:
        ChatTemplate(source)
    except jinja2.TemplateError as exc:
        raise TemplateFileError(f"{path} is not a valid Jinja template: {exc}") from None
    return source

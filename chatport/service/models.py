"""The models being served: each a backend with its chat template and tool-call format,
reachable by id or by alias."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from chatport.protocol.backend import Backend, ModelCapabilities
from chatport.protocol.errors import model_not_found
from chatport.service.prompt import PromptBuilder
from chatport.service.reasoning import ReasoningPlan, ReasoningTemplate
from chatport.service.template import CHATML, ChatTemplate
from chatport.service.tools import ToolCallFormat, format_for


@dataclass
class ServedModel:
    id: str
    backend: Backend
    template: ChatTemplate
    tool_format: ToolCallFormat
    prompts: PromptBuilder
    reasoning: ReasoningTemplate | None = None  # None: the template cannot think
    # reasoning_effort (None: not given) -> what the prompt and the engine do; empty when
    # the template cannot think.
    reasoning_plans: dict[str | None, ReasoningPlan] = field(default_factory=dict)
    owned_by: str = "chatport"

    @classmethod
    def create(cls, model_id: str, backend: Backend, chat_template: str | None = None) -> ServedModel:
        """``chat_template``: used instead of the one the model ships (--chat-template)."""
        source = chat_template or backend.capabilities.chat_template
        vocab = backend.vocabulary
        template = ChatTemplate(source or CHATML, bos_token=vocab.bos_text, eos_token=vocab.eos_text)
        reasoning = ReasoningTemplate.detect(template)
        return cls(
            model_id,
            backend,
            template,
            format_for(source),
            PromptBuilder(backend, template),
            reasoning,
            reasoning.plans(backend) if reasoning is not None else {},
        )

    @property
    def capabilities(self) -> ModelCapabilities:
        return self.backend.capabilities

    def literal(self, text: str) -> str:
        """The grammar literal for a marker: the model's own token when one token spells it
        (Qwen's <tool_call>), else the plain text."""
        tokens = self.backend.tokenize(text, special=True)
        return f"<[{tokens[0]}]>" if len(tokens) == 1 else json.dumps(text)


class ModelRegistry:
    def __init__(self) -> None:
        self._models: dict[str, ServedModel] = {}
        self._aliases: dict[str, str] = {}

    def add(self, model: ServedModel) -> None:
        self._models[model.id] = model

    def alias(self, name: str, target: str) -> None:
        if target not in self._models:
            raise KeyError(target)
        self._aliases[name] = target

    def resolve(self, name: str) -> ServedModel:
        model = self.find(name)
        if model is None:
            raise model_not_found(name)
        return model

    def find(self, name: str) -> ServedModel | None:
        return self._models.get(self._aliases.get(name, name))

    @property
    def longest_context(self) -> int:
        return max((m.capabilities.context_length for m in self._models.values()), default=1)

    def listed(self) -> list[ServedModel]:
        return list(self._models.values())

    def names(self) -> list[tuple[str, ServedModel]]:
        """Every name a client may use, aliases included, with the model it reaches."""
        return [(m.id, m) for m in self._models.values()] + [(a, self._models[t]) for a, t in self._aliases.items()]

    def close(self) -> None:
        for model in self._models.values():
            model.backend.close()

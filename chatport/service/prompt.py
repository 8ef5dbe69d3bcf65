"""Messages -> the model's prompt: the chat template rendered, then tokenized."""

from __future__ import annotations

import asyncio
from typing import Any

from chatport.protocol.prompt import Prompt
from chatport.service.models import ServedModel


async def build_prompt(model: ServedModel, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> Prompt:
    text = model.template.render(messages, tools=tools)
    # Tokenizing a multi-megabyte prompt takes a while: keep the event loop serving.
    tokens = await asyncio.to_thread(model.backend.tokenize, text, special=True)
    vocab = model.backend.vocabulary
    if vocab.add_bos and vocab.bos_id >= 0 and (not tokens or tokens[0] != vocab.bos_id):
        tokens.insert(0, vocab.bos_id)
    return Prompt.of_tokens(tokens)

"""Search queries the model writes (``--web-search-queries model``): one short generation
before the answer's, under a JSON grammar that admits an object with one to three queries
of at most 100 characters, at temperature 0 and within 150 tokens. What it writes is read
as JSON; an answer that is cut or empty leaves the search to the user's own words."""

from __future__ import annotations

import asyncio
import json

from chatport.protocol.backend import BackendFailure, GenerationRequest, SamplingParams
from chatport.protocol.errors import InvalidRequestError
from chatport.service.json_grammar import grammar_schema
from chatport.service.models import ServedModel
from chatport.service.prompt import build_prompt
from chatport.service.run import admitted, as_api_error
from chatport.service.structured import schema_grammar
from chatport.service.workers import WorkerPools

QUERIES_SCHEMA = {
    "type": "object",
    "properties": {"queries": {"type": "array", "items": {"type": "string", "maxLength": 100}, "minItems": 1, "maxItems": 3}},
    "required": ["queries"],
    "additionalProperties": False,
}
MAX_TOKENS = 150
INSTRUCTION = (
    "Write the web search queries that would find what is needed to answer the question below: one to three "
    'short queries, as a JSON object {{"queries": [...]}}.\n\nQuestion: {question}'
)


class QueryWriter:
    def __init__(self, model: ServedModel, pools: WorkerPools, project: str) -> None:
        self._model = model
        self._pools = pools
        self._project = project

    async def __call__(self, question: str) -> list[str]:
        model = self._model
        messages = [{"role": "user", "content": INSTRUCTION.format(question=question)}]
        prompt = await build_prompt(model.prompts, self._pools.prompt, messages, None)
        source = schema_grammar(grammar_schema(QUERIES_SCHEMA, lenient=False), _never)
        loop = asyncio.get_running_loop()
        grammar = await loop.run_in_executor(self._pools.grammar, model.backend.compile_grammar, source)
        request = GenerationRequest(
            prompt=prompt,
            params=SamplingParams(temperature=0.0),
            max_tokens=MAX_TOKENS,
            cache_scope=self._project,
            grammar=grammar,
        )
        try:
            handle = await admitted(model.backend.submit(request))
        except BackendFailure as failure:
            raise as_api_error(failure) from None
        text = ""
        try:
            async for deltas in handle:
                text += "".join(delta.text for delta in deltas)
        except BackendFailure as failure:
            raise as_api_error(failure) from None
        finally:
            handle.cancel()
        try:
            queries = json.loads(text)["queries"]
        except (ValueError, KeyError, TypeError):
            return []
        return [q for q in queries if isinstance(q, str)]


def _never(detail: str) -> InvalidRequestError:
    raise AssertionError(f"the queries grammar is the server's own and compiles: {detail}")

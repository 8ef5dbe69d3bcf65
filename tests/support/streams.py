"""A text stream that runs to its length (every end-of-generation token banned), for tests
that check other work does not stall or cut running streams."""

from __future__ import annotations

from tests.conftest import MODEL


async def stream_to_length(client, max_tokens: int, logit_bias: dict[str, int]) -> tuple[int, str | None]:
    """(completion tokens, last finish reason) of one streamed answer."""
    response = await client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Count to fifty."}],
        max_tokens=max_tokens,
        stream=True,
        stream_options={"include_usage": True},
        logit_bias=logit_bias,
    )
    chunks = [c async for c in response]
    return chunks[-1].usage.completion_tokens, [c.choices[0].finish_reason for c in chunks if c.choices][-1]

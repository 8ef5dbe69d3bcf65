"""langchain-openai's JSON mode replayed over seeds against one or more servers:
how often `with_structured_output(..., method="json_mode")` parses (docs/benchmarks.md).

    python scripts/json_mode_replay.py MODEL BASE_URL [BASE_URL ...]
"""

from __future__ import annotations

import sys

from langchain_openai import ChatOpenAI
from pydantic import BaseModel

ASK = "Return a JSON object with keys city, country and population for the capital of France."


class Capital(BaseModel):
    city: str
    country: str
    population: int


def replay(base_url: str, model: str, seeds: int = 5) -> list[tuple[bool, str]]:
    out = []
    for seed in range(seeds):
        llm = ChatOpenAI(base_url=base_url, api_key="x", model=model, temperature=1, seed=seed, max_tokens=200, max_retries=0)
        result = llm.with_structured_output(Capital, method="json_mode", include_raw=True).invoke(ASK)
        out.append((result["parsed"] is not None, str(result["raw"].content)[:100]))
    return out


if __name__ == "__main__":
    model, *bases = sys.argv[1:]
    for base in bases:
        results = replay(base, model)
        print(f"{base}: {sum(ok for ok, _ in results)}/{len(results)} parsed")
        for ok, raw in results:
            print(f"  {'ok ' if ok else 'bad'} {raw!r}")

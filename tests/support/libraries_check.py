"""instructor and pydantic-ai against a chatport server, run with their own installation
first on the path (they need an openai release the suite does not pin). Prints one JSON
report; tests/e2e/test_client_libraries.py checks it. CHATPORT_BASE_URL, CHATPORT_MODEL."""

from __future__ import annotations

import json
import os

import instructor
import openai
import pydantic_ai
from openai import OpenAI
from pydantic_ai import Agent
from pydantic_ai.exceptions import UnexpectedModelBehavior, UsageLimitExceeded
from pydantic_ai.usage import UsageLimits

from tests.support.models import PERSON_ASK, Person

BASE, MODEL = os.environ["CHATPORT_BASE_URL"], os.environ["CHATPORT_MODEL"]
report: dict[str, object] = {"openai": openai.__version__, "instructor": instructor.__version__}

for mode in ("TOOLS", "JSON_SCHEMA"):
    client = instructor.from_openai(OpenAI(base_url=BASE, api_key="x", max_retries=0), mode=getattr(instructor.Mode, mode))
    person = client.chat.completions.create(
        model=MODEL,
        response_model=Person,
        messages=[{"role": "user", "content": PERSON_ASK}],
        max_retries=0,
        temperature=0,
        max_tokens=200,
    )
    report[f"instructor_{mode.lower()}"] = person.model_dump()


def openai_model():
    from pydantic_ai.providers.openai import OpenAIProvider

    try:
        from pydantic_ai.models.openai import OpenAIChatModel as ChatModel
    except ImportError:  # before 1.0
        from pydantic_ai.models.openai import OpenAIModel as ChatModel
    return ChatModel(MODEL, provider=OpenAIProvider(base_url=BASE, api_key="x"))


agent = Agent(openai_model(), output_type=Person, model_settings={"temperature": 0, "max_tokens": 200})
report["pydantic_ai_version"] = pydantic_ai.__version__
report["pydantic_ai_output"] = agent.run_sync(PERSON_ASK).output.model_dump()

calls: list[str] = []
weather = Agent(openai_model(), model_settings={"temperature": 0, "max_tokens": 120})


@weather.tool_plain
def get_weather(location: str) -> str:
    """Get the current weather for a location."""
    calls.append(location)
    return f"21 degrees and sunny in {location}"


try:
    result = weather.run_sync("What is the weather in Paris? Use the tool.", usage_limits=UsageLimits(request_limit=4))
    report["pydantic_ai_answer"] = result.output
except (UnexpectedModelBehavior, UsageLimitExceeded) as exc:
    # Qwen2.5-Coder-0.5B calls the tool again after its result (as it does under
    # llama-server): the model's loop, recorded, not the library's or the server's failure.
    report["pydantic_ai_answer"] = None
    report["pydantic_ai_ended"] = type(exc).__name__
report["pydantic_ai_tool_calls"] = calls
print(json.dumps(report))

"""Reasoning models: which chat templates can think, how ``reasoning_effort`` reaches
them, and how an answer's think block is told from its content.

A template can think when it writes a think block's tags (``<think>``…``</think>`` and the
other families' spellings below) or takes a thinking switch (``enable_thinking``: Qwen3,
SmolLM3, GLM; ``thinking``: DeepSeek-V3.1).
What its generation prompt does is read off the template by rendering it once per
switch, at load time:

- Qwen3 (``enable_thinking``): on, the prompt ends at ``<|im_start|>assistant\\n`` and the
  model opens the block itself; off, the template writes an empty block.
- DeepSeek-R1: the prompt always ends inside an opened block (``<think>\\n``).

``reasoning_effort`` then maps as follows. ``"none"`` turns thinking off: the template's
switch, else the block the template opened is closed (or an empty one written) right in
the prompt, so the model answers at once. Every other effort turns it on with a budget of
thinking tokens (:data:`BUDGETS`); when the model has not closed the block by then, its
end tag is forced and the answer follows. Without ``reasoning_effort``, the template's own
default holds, with the ``medium`` budget when it thinks (OpenAI's default effort).
Where the template does not open the block, the engine opens it, so every answer of a
thinking request starts inside one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from chatport.protocol.backend import Backend, Thinking
from chatport.service.template import ChatTemplate, TemplateError

# A think block's tags, as each family spells them; the first found in a template is its.
TAGS = (
    ("<think>", "</think>"),
    ("<|START_THINKING|>", "<|END_THINKING|>"),
    ("[THINK]", "[/THINK]"),
    ("<seed:think>", "</seed:think>"),
)

# reasoning_effort -> thinking tokens before the block's end is forced (None: no budget
# but max_completion_tokens and the context).
BUDGETS: dict[str, int | None] = {
    "minimal": 128,
    "low": 1024,
    "medium": 4096,
    "high": None,
    "xhigh": None,
    "max": None,
}
DEFAULT_EFFORT = "medium"

# Template variables that switch thinking on and off, as the families name them.
SWITCHES = ("enable_thinking", "thinking")

Ending = Literal["open", "closed", "none"]  # how a generation prompt leaves the think block


@dataclass(frozen=True)
class ReasoningPlan:
    """One request's reasoning: template switches, markup appended to the rendered prompt,
    and the think block the answer opens with (None: thinking off)."""

    variables: dict[str, Any] = field(default_factory=dict)
    suffix: str = ""
    thinking: Thinking | None = None
    # Control tokens among the block's tags: written out, since the block's end is found in text.
    visible: frozenset[int] = frozenset()


@dataclass(frozen=True)
class ReasoningTemplate:
    start: str
    end: str
    switch: str | None  # the template variable that turns thinking on and off, if any
    when_on: Ending
    when_off: Ending

    @classmethod
    def detect(cls, template: ChatTemplate) -> ReasoningTemplate | None:
        source = template.source
        start, end = next(((s, e) for s, e in TAGS if s in source and e in source), TAGS[0])
        on = off = _generation_prompt(template, {})
        switch = None
        for name in (n for n in SWITCHES if n in source):
            on, off = _generation_prompt(template, {name: True}), _generation_prompt(template, {name: False})
            if on != off:
                switch = name
                break
        if on is None or off is None or (start not in source and switch is None):
            return None
        return cls(start, end, switch, _ending(on, start, end), _ending(off, start, end))

    def plans(self, backend: Backend) -> dict[str | None, ReasoningPlan]:
        """Every effort's plan (None: not given), made once per model: requests only look
        theirs up."""
        vocab = backend.vocabulary
        visible = frozenset(vocab.special[t] for t in (self.start, self.end) if t in vocab.control)
        plans: dict[str | None, ReasoningPlan] = {}
        for effort in (None, "none", *BUDGETS):
            plan = self.plan(effort, backend)
            plans[effort] = replace(plan, visible=visible) if plan.thinking is not None else plan
        return plans

    def plan(self, effort: str | None, backend: Backend) -> ReasoningPlan:
        if effort == "none":
            variables = {self.switch: False} if self.switch else {}
            suffix = {"open": f"\n{self.end}\n\n", "none": f"{self.start}\n\n{self.end}\n\n", "closed": ""}[self.when_off]
            return ReasoningPlan(variables, suffix)
        variables = {self.switch: True} if self.switch else {}
        if self.when_on == "closed":  # a template that cannot think after all
            return ReasoningPlan(variables)
        opens = () if self.when_on == "open" else tuple(backend.tokenize(f"{self.start}\n", special=True))
        thinking = Thinking(
            end=self.end,
            close_tokens=tuple(backend.tokenize(f"\n{self.end}", special=True)),
            open_tokens=opens,
            budget=BUDGETS[effort or DEFAULT_EFFORT],
        )
        return ReasoningPlan(variables, "", thinking)


def _generation_prompt(template: ChatTemplate, variables: dict[str, Any]) -> str | None:
    """What the template writes after the last message to prompt an answer."""
    probe = [{"role": "user", "content": "Hello"}]
    try:
        bare = template.render(probe, add_generation_prompt=False, variables=variables)
        full = template.render(probe, add_generation_prompt=True, variables=variables)
    except TemplateError:
        return None
    return full[len(bare) :] if full.startswith(bare) else full[full.rfind("Hello") + len("Hello") :]


def _ending(prompt: str, start: str, end: str) -> Ending:
    tail = prompt.rstrip()
    if tail.endswith(start):
        return "open"
    if tail.endswith(end) and start in tail:
        return "closed"
    return "none"


def split_history(content: str, start: str, end: str) -> tuple[str | None, str]:
    """An earlier answer's content as (reasoning, answer): a think block a client sent back
    inside ``content`` is reasoning, which templates drop from earlier turns."""
    at = content.find(end)
    if at < 0:
        return None, content
    reasoning = content[:at].strip()
    if reasoning.startswith(start):
        reasoning = reasoning[len(start) :].strip()
    return reasoning, content[at + len(end) :].lstrip()


class ReasoningSplitter:
    """One choice's output -> ("reasoning", text) and ("content", text) pieces, as it
    streams. The output starts inside the think block (its start tag, when written, is
    dropped); the block's end tag and the whitespace around the reasoning are dropped too.
    Text that may be the start of a tag is held back until the next piece tells."""

    def __init__(self, start: str, end: str) -> None:
        self._start, self._end = start, end
        self._state: Literal["lead", "inside", "answer"] = "lead"
        self._held = ""  # unreleased output (a possible tag's start, trailing whitespace)
        self._answer_lead = True  # whitespace before the answer is dropped
        self.fed = 0  # output characters seen
        self.content_start: int | None = None  # output offset where the answer starts

    def feed(self, text: str) -> list[tuple[str, str]]:
        self.fed += len(text)
        if self._state == "answer":
            return self._answer(text)
        self._held += text
        out: list[tuple[str, str]] = []
        if self._state == "lead":
            stripped = self._held.lstrip()
            if stripped and self._start.startswith(stripped) and stripped != self._start:
                return out  # may still become the start tag
            self._held = stripped[len(self._start) :].lstrip() if stripped.startswith(self._start) else stripped
            if not self._held:
                return out
            self._state = "inside"
        at = self._held.find(self._end)
        if at >= 0:
            reasoning, rest = self._held[:at].rstrip(), self._held[at + len(self._end) :]
            self._held = ""
            if reasoning:
                out.append(("reasoning", reasoning))
            self._state = "answer"
            self.content_start = self.fed - len(rest)
            return out + self._answer(rest)
        keep = _held_back(self._held, self._end)
        if keep < len(self._held):
            out.append(("reasoning", self._held[: len(self._held) - keep]))
            self._held = self._held[len(self._held) - keep :]
        return out

    def finish(self) -> list[tuple[str, str]]:
        """The output ended (inside the block, when it never closed)."""
        held, self._held = self._held.strip(), ""
        if self._state != "answer" and held:
            return [("reasoning", held)]
        return []

    def _answer(self, text: str) -> list[tuple[str, str]]:
        if self._answer_lead:
            stripped = text.lstrip()
            if self.content_start is not None:
                self.content_start += len(text) - len(stripped)
            text = stripped
            self._answer_lead = not text
        return [("content", text)] if text else []


def _held_back(text: str, end: str) -> int:
    """How many trailing characters to hold: a possible start of ``end``, and the
    whitespace before it (trailing whitespace of the reasoning is dropped at the tag)."""
    keep = 0
    for n in range(min(len(end) - 1, len(text)), 0, -1):
        if end.startswith(text[-n:]):
            keep = n
            break
    body = text[: len(text) - keep]
    return keep + (len(body) - len(body.rstrip()))

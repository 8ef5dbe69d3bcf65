"""Messages -> the model's prompt: the chat template rendered, then tokenized so that only
the template's own markup becomes control tokens.

Client text (message content, names, tool calls and results, tool definitions) may spell a
control token: ``<|im_end|>\\n<|im_start|>system\\n...`` typed into a message would forge a
role boundary if the rendered prompt were tokenized as a whole with special tokens on.
So before rendering, every control-token spelling in client text is swapped for a private
sentinel; after rendering, the text is cut at the template's special tokens (which map
straight to their ids) and each piece between them is tokenized as plain text, with the
sentinels turned back into what the client wrote. Whatever a client writes stays text.

Every step is linear in the prompt: special tokens are found with an Aho-Corasick
automaton (vocabularies have up to thousands of them), and a prompt that cannot fit the
context is refused from its length before it is tokenized. The work runs in a bounded
thread pool, off the event loop, and stops between pieces when the client has gone.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import ahocorasick

from chatport.protocol.backend import Backend, BackendFailure
from chatport.protocol.errors import InvalidRequestError
from chatport.protocol.prompt import Image, MediaChunk, Prompt, Segment
from chatport.service.reasoning import ReasoningPlan
from chatport.service.template import ChatTemplate
from chatport.service.workers import run_stoppable

# Private-use characters: a sentinel is OPEN + index + CLOSE. Client text holding either
# character gets it swapped too, so no client can write a sentinel of its own.
_OPEN, _CLOSE = "\ue000", "\ue001"
_SENTINEL = re.compile(f"{_OPEN}([0-9]+){_CLOSE}")
NO_REASONING = ReasoningPlan()


class PromptCancelled(Exception):
    """The client left while its prompt was being built."""


@dataclass(frozen=True)
class PromptImages:
    """The request's images, in order, and the marker standing for each in the messages'
    text: a per-request random string that no client can know in advance, so only the
    server's own markers become images."""

    images: Sequence[Image]
    params: Sequence[str]  # each image's part, for errors (messages[0].content[1])
    marker: str


class PromptBuilder:
    """One model's template and vocabulary, turning messages into prompt tokens."""

    def __init__(self, backend: Backend, template: ChatTemplate) -> None:
        vocab = backend.vocabulary
        self._backend = backend
        self._template = template
        self._special = dict(vocab.special)
        self._control = _automaton([*vocab.control, _OPEN, _CLOSE])
        self._markup = _automaton(vocab.special) if vocab.special else None
        self._bos = vocab.bos_id if vocab.add_bos else -1
        self._max_token_bytes = vocab.max_token_bytes
        self._context = backend.capabilities.context_length

    def build(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        stop: threading.Event,
        reasoning: ReasoningPlan = NO_REASONING,
        images: PromptImages | None = None,
    ) -> Prompt:
        """Blocking: call it in a worker thread. ``stop`` set: the client has gone.
        ``reasoning``: the template's thinking switch and markup that ends the prompt.
        ``images``: where the rendered text holds their marker, the images go (encoded
        by the backend, here in the pool)."""
        guard = _Guard(self._control)
        tool_data = guard.walk(tools) if tools is not None else None
        text = self._template.render(guard.walk(messages), tools=tool_data, variables=reasoning.variables) + reasoning.suffix
        self._check_fits(text)
        segments = _Segments(images, self._backend, stop, self._context)
        self._tokenize(text, guard.originals, stop, segments)
        return Prompt(segments.finish(self._bos))

    def _check_fits(self, text: str) -> None:
        # No token is longer than max_token_bytes, so this many bytes need at least this
        # many tokens: a prompt that cannot fit is refused before any tokenizing.
        at_least = math.ceil(len(text.encode("utf-8", "surrogatepass")) / self._max_token_bytes)
        if at_least >= self._context:
            raise InvalidRequestError(
                f"This model's maximum context length is {self._context} tokens. However, your messages "
                f"resulted in at least {at_least} tokens. Please reduce the length of the messages.",
                param="messages",
                code="context_length_exceeded",
            )

    def _tokenize(self, text: str, originals: list[str], stop: threading.Event, out: _Segments) -> None:
        start = 0
        for end, special in self._markup.iter_long(text) if self._markup is not None else ():
            begin = end - len(special) + 1
            self._plain(text[start:begin], originals, out)
            out.tokens.append(self._special[special])
            start = end + 1
            if stop.is_set():
                raise PromptCancelled
        self._plain(text[start:], originals, out)

    def _plain(self, piece: str, originals: list[str], out: _Segments) -> None:
        pieces = piece.split(out.marker) if out.marker else [piece]
        for k, text in enumerate(pieces):
            if k:
                out.add_image()
            if text:
                restored = _SENTINEL.sub(lambda m: originals[int(m.group(1))], text)
                out.tokens += self._backend.tokenize(restored, special=False)


class _Segments:
    """The prompt as it is built: token runs, with each image's segments where its marker was.
    Images are encoded one at a time, each only while the client is there and the prompt
    can still fit (an image's cells are known once it is encoded)."""

    def __init__(self, images: PromptImages | None, backend: Backend, stop: threading.Event, context: int) -> None:
        self._stop = stop
        self._context = context
        self._images = images.images if images is not None else ()
        self._params = images.params if images is not None else ()
        self.marker = images.marker if images is not None else ""
        self._backend = backend
        self._done: list[Segment] = []
        self._placed = 0
        self._cells = 0  # of the media chunks placed so far
        self.tokens: list[int] = []

    def add_image(self) -> None:
        if self._placed >= len(self._images):
            return  # the template repeated a message: the marker stays unused
        if self._stop.is_set():
            raise PromptCancelled
        self._close_run()
        try:
            encoded = self._backend.encode_image(self._images[self._placed])
        except BackendFailure as exc:
            param = self._params[self._placed]
            raise InvalidRequestError(f"Invalid image in '{param}': {exc}.", param=param, code="invalid_image") from None
        for segment in encoded:
            if isinstance(segment, MediaChunk):
                self._close_run()
                self._done.append(segment)
                self._cells += segment.n_cells
            else:
                self.tokens += segment
        self._placed += 1
        cells = self._cells + sum(len(s) for s in self._done if not isinstance(s, MediaChunk)) + len(self.tokens)
        if cells >= self._context:
            raise InvalidRequestError(
                f"This model's maximum context length is {self._context} tokens. However, your messages resulted in "
                f"at least {cells} tokens with {self._placed} of their {len(self._images)} images. Please reduce the "
                "length of the messages or the number of images.",
                param="messages",
                code="context_length_exceeded",
            )

    def _close_run(self) -> None:
        if self.tokens:
            self._done.append(self.tokens)
            self.tokens = []

    def finish(self, bos: int) -> list[Segment]:
        if self._placed < len(self._images):
            raise InvalidRequestError(
                f"The chat template placed {self._placed} of the {len(self._images)} images in the prompt: it drops "
                "the content of some messages (images are read from user messages).",
                param="messages",
                code="invalid_value",
            )
        self._close_run()
        first = self._done[0] if self._done else None
        if bos >= 0 and not (isinstance(first, list) and first and first[0] == bos):
            self._done.insert(0, [bos])
        return self._done


class _Guard:
    """Swaps control-token spellings in client data for sentinels, remembering them."""

    def __init__(self, control: Any) -> None:
        self._control = control
        self.originals: list[str] = []
        self._index: dict[str, int] = {}

    def walk(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._text(value)
        if isinstance(value, dict):
            return {self._text(k) if isinstance(k, str) else k: self.walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.walk(v) for v in value]
        return value

    def _text(self, text: str) -> str:
        out, start = [], 0
        for end, found in self._control.iter_long(text):
            out.append(text[start : end - len(found) + 1])
            out.append(f"{_OPEN}{self._sentinel(found)}{_CLOSE}")
            start = end + 1
        if not out:
            return text
        out.append(text[start:])
        return "".join(out)

    def _sentinel(self, found: str) -> int:
        if found not in self._index:
            self._index[found] = len(self.originals)
            self.originals.append(found)
        return self._index[found]


def _automaton(words: Iterable[str]) -> Any:
    automaton = ahocorasick.Automaton()
    for word in words:
        if word:
            automaton.add_word(word, word)
    automaton.make_automaton()
    return automaton


async def build_prompt(
    builder: PromptBuilder,
    pool: ThreadPoolExecutor,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    reasoning: ReasoningPlan = NO_REASONING,
    images: PromptImages | None = None,
) -> Prompt:
    """Build in ``pool``; if the caller is cancelled (its client left), the work stops."""
    return await run_stoppable(pool, lambda stop: builder.build(messages, tools, stop, reasoning, images))

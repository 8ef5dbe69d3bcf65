"""Images placed in prompts, without a model: each image part's segments go where the part
is, in order, across turns; text a client writes stays text, even text that looks like
the server's marker; an image the backend cannot take is a 400 naming its part."""

from __future__ import annotations

import base64
import dataclasses
import threading

import PIL.Image
import pytest

from chatport.catalog import default_model
from chatport.engine.llama import LlamaModel
from chatport.protocol.backend import BackendFailure
from chatport.protocol.errors import InvalidRequestError
from chatport.protocol.prompt import MEDIA_CELL, Image, MediaChunk, Segment
from chatport.protocol.requests import ChatCompletionRequest
from chatport.service.images import ImagePlacer, image_of
from chatport.service.messages import to_template_messages
from chatport.service.models import ServedModel
from tests.support.images import picture
from tests.support.pdf import pdf_with_scan
from tests.unit.test_prompt_safety import VocabBackend

MARKER = "<image:0123456789abcdef0123456789abcdef>"


class VisionVocabBackend(VocabBackend):
    """Encodes an image as a wrapper token run around one 3-cell chunk named by its digest."""

    def __init__(self, model: LlamaModel) -> None:
        super().__init__(model)
        self.encoded: list[str] = []

    def encode_image(self, image: Image) -> list[Segment]:
        if image.digest == "broken":
            raise BackendFailure("the encoder failed")
        self.encoded.append(image.digest)
        return [self.model.tokenize("<img>", special=False), MediaChunk("image", image.digest, 3, 3)]


def pixel(digest: str) -> Image:
    return Image(1, 1, b"\0\0\0", digest)


@pytest.fixture(scope="module")
def model():
    return ServedModel.create("m", VisionVocabBackend(LlamaModel(default_model().path, vocab_only=True)))


def build(model: ServedModel, messages: list[dict], digests: list[str]):
    request = ChatCompletionRequest.model_validate({"model": "m", "messages": messages})
    placer = ImagePlacer([pixel(d) for d in digests], MARKER)
    converted = to_template_messages(request.messages, model="m", template=model.template, images=placer)
    return model.prompts.build(converted, None, threading.Event(), images=placer.prompt_images())


def image(n: int = 0) -> dict:
    return {"type": "image_url", "image_url": {"url": f"https://example.com/{n}.png"}}


def text(value: str) -> dict:
    return {"type": "text", "text": value}


def test_images_go_where_their_parts_are_in_order_across_turns(model):
    messages = [
        {"role": "user", "content": [text("Compare"), image(1), text("with"), image(2)]},
        {"role": "assistant", "content": "They differ."},
        {"role": "user", "content": [image(3), text("and this one?")]},
    ]
    prompt = build(model, messages, ["a", "b", "c"])
    assert [chunk.content_hash for _, chunk in sorted(prompt.media.items())] == ["a", "b", "c"]
    rendered = model.backend.model.detokenize([c for c in prompt.cells if c != MEDIA_CELL])
    assert rendered.index("Compare") < rendered.index("with") < rendered.index("They differ.") < rendered.index("and this one?")
    assert rendered.count("<img>") == 3
    # The wrapper sits right before each chunk, and the text resumes after it.
    start = min(prompt.media)
    wrapper = model.backend.model.tokenize("<img>", special=False)
    assert prompt.cells[start - len(wrapper) : start] == wrapper
    assert prompt.cells[start : start + 3] == [MEDIA_CELL] * 3


def test_text_that_looks_like_a_marker_stays_text(model):
    lookalike = "<image:ffffffffffffffffffffffffffffffff>"
    prompt = build(model, [{"role": "user", "content": [text(f"{lookalike} {MARKER[:-1]}"), image()]}], ["a"])
    assert len(prompt.media) == 1
    assert lookalike in model.backend.model.detokenize([c for c in prompt.cells if c != MEDIA_CELL])


def test_an_image_the_backend_cannot_take_is_a_400_naming_its_part(model):
    messages = [{"role": "user", "content": [text("look"), image(), image()]}]
    with pytest.raises(InvalidRequestError) as caught:
        build(model, messages, ["fine", "broken"])
    assert caught.value.param == "messages[0].content[2]"
    assert "the encoder failed" in caught.value.message


def test_a_scanned_pdf_page_is_placed_as_an_image_between_its_neighbours(model):
    pdf = pdf_with_scan(["The first page has text."], picture(), ["So does the last."])
    file_part = {"type": "file", "file": {"filename": "scan.pdf", "file_data": base64.b64encode(pdf).decode()}}
    prompt = build(model, [{"role": "user", "content": [text("Read it."), file_part, image()]}], ["from-url"])
    ((first, page), (second, url_image)) = sorted(prompt.media.items())
    assert url_image.content_hash == "from-url"  # the image_url part after the file comes after its pages
    assert page.content_hash == image_of(picture_rendering(pdf)).digest
    rendered = model.backend.model.detokenize(prompt.cells[:first])
    assert "The first page has text." in rendered and "--- page 2 ---" in rendered
    after = model.backend.model.detokenize([c for c in prompt.cells[first:second] if c != MEDIA_CELL])
    assert "--- page 3 ---\nSo does the last." in after
    assert model.backend.encoded[-2:] == [page.content_hash, "from-url"]


def picture_rendering(pdf: bytes):
    from chatport.service.files import render_pages

    (page,) = render_pages(pdf, [1])
    return PIL.Image.frombytes("RGB", (page.width, page.height), page.rgb)


class BigImageBackend(VisionVocabBackend):
    """Each image fills 1,000 cells: three cannot fit a 2,048-token context."""

    def encode_image(self, image: Image) -> list[Segment]:
        self.encoded.append(image.digest)
        return [MediaChunk("image", image.digest, 1000, 1000)]


def test_images_stop_being_encoded_once_the_prompt_cannot_fit():
    backend = BigImageBackend(LlamaModel(default_model().path, vocab_only=True))
    backend.capabilities = dataclasses.replace(backend.capabilities, context_length=2048)
    big = ServedModel.create("m", backend)
    with pytest.raises(InvalidRequestError) as caught:
        build(big, [{"role": "user", "content": [image(i) for i in range(5)]}], [f"d{i}" for i in range(5)])
    assert caught.value.code == "context_length_exceeded" and "with 3 of their 5 images" in caught.value.message
    assert backend.encoded == ["d0", "d1", "d2"]  # the rest were never encoded


def test_images_are_not_encoded_for_a_client_that_left(model):
    request = ChatCompletionRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": [image(0)]}]})
    placer = ImagePlacer([pixel("gone")], MARKER)
    converted = to_template_messages(request.messages, model="m", template=model.template, images=placer)
    stop = threading.Event()
    stop.set()
    from chatport.service.prompt import PromptCancelled

    before = list(model.backend.encoded)
    with pytest.raises(PromptCancelled):
        model.prompts.build(converted, None, stop, images=placer.prompt_images())
    assert model.backend.encoded == before

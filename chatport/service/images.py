"""``image_url`` parts -> decoded images for a vision backend.

An image arrives as a data URL (``data:image/png;base64,...``) or an http(s) address
fetched under the guards in ``service/fetch.py``. PNG, JPEG, WebP and GIF (its first
frame) are decoded with Pillow into 8-bit RGB; transparency is laid over white, as a
page would show it. ``detail``: ``low`` fits the image into 512x512 first (as OpenAI's
low detail does), so it costs the fewest image tokens a projector with dynamic resolution
allows; ``high`` and ``auto`` pass the image as sent, and the projector's own resolution
limits apply (a fixed-size projector such as Gemma 3's resizes every image alike).

Fetching is async (many at once); decoding runs in the images pool, off the event loop.
Every failure is a 400 naming the part (``messages[0].content[1]``). Memory is bounded per
request (``MAX_REQUEST_PIXELS``) and across requests (``PixelBudget``: decoded images are
held from decoding until their prompt is built, and a request waits for room).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import secrets
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import PIL.Image

from chatport.protocol import requests as rq
from chatport.protocol.errors import InvalidRequestError, overloaded_error
from chatport.protocol.prompt import Image
from chatport.service.dataurl import DATA_URL, PayloadError, decode_payload
from chatport.service.fetch import FetchError, UrlFetcher, fetch_error
from chatport.service.prompt import PromptImages

MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000  # a decompression bomb is refused before its pixels are decoded
LOW_DETAIL_SIDE = 512
MAX_IMAGES = 100  # image parts per request
MAX_REQUEST_PIXELS = 64_000_000  # decoded pixels per request (3 bytes each)
DECODED_PIXELS = 128_000_000  # decoded pixels held by all requests at once (~384 MB of RGB)
PIXEL_WAIT_SECONDS = 30.0  # how long a request waits for room before a 503
FETCHES_AT_ONCE = 4  # image URLs one request downloads at a time
FORMATS = ("PNG", "JPEG", "WEBP", "GIF")  # Pillow's names of the formats OpenAI takes


def image_parts(messages: list[Any]) -> list[tuple[str, rq.ImageURL]]:
    """(param, image_url) of every image part, in prompt order."""
    return [(param, part.image_url) for param, part in rq.parts_of(messages, rq.ImagePart)]


class PixelBudget:
    """Decoded pixels that all requests together may hold: a request takes room for each
    image before decoding it and gives it back once its prompt is built."""

    def __init__(self, pixels: int = DECODED_PIXELS) -> None:
        self.free = pixels
        self._changed = asyncio.Condition()

    async def take(self, pixels: int) -> None:
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: self.free >= pixels), PIXEL_WAIT_SECONDS)
            except TimeoutError:
                raise overloaded_error(
                    "The server is decoding too many images for other requests right now. Please retry after a brief wait.",
                    code="server_overloaded",
                ) from None
            self.free -= pixels

    async def give(self, pixels: int) -> None:
        if pixels:
            async with self._changed:
                self.free += pixels
                self._changed.notify_all()


async def load_images(
    messages: list[Any], fetcher: UrlFetcher, pool: ThreadPoolExecutor, budget: PixelBudget | None = None
) -> list[Image]:
    """Every image of the messages, decoded, in prompt order. Fetched a few at a time; the
    first failure cancels the rest. One request holds at most MAX_IMAGES images and
    MAX_REQUEST_PIXELS decoded pixels, so its memory is bounded whatever it asks for;
    ``budget``: room taken for each image (the caller gives back ``sum(w * h)`` once done
    with them; this gives back what it took if it fails)."""
    budget = budget or PixelBudget()
    parts = image_parts(messages)
    if len(parts) > MAX_IMAGES:
        raise InvalidRequestError(
            f"Too many images: the messages hold {len(parts)} image parts; at most {MAX_IMAGES} are accepted per request.",
            param="messages",
            code="too_many_images",
        )
    loop = asyncio.get_running_loop()
    fetching = asyncio.Semaphore(FETCHES_AT_ONCE)
    pixels = 0  # asked for by this request
    taken = 0  # room held in the budget

    async def one(param: str, ref: rq.ImageURL) -> Image:
        nonlocal pixels, taken
        async with fetching:
            data, declared = await _bytes_of(ref.url, param, fetcher)
        size = await loop.run_in_executor(pool, image_pixels, data, param, declared)
        pixels += size
        if pixels > MAX_REQUEST_PIXELS:
            raise InvalidRequestError(
                f"Invalid image in '{param}': the request's images hold more than {MAX_REQUEST_PIXELS:,} pixels in all.",
                param=param,
                code="image_too_large",
            )
        await budget.take(size)
        taken += size
        image = await loop.run_in_executor(pool, decode_image, data, param, ref.detail, declared)
        kept = image.width * image.height  # low detail shrinks it: the rest goes back now
        await budget.give(size - kept)
        taken -= size - kept
        return image

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(param, ref)) for param, ref in parts]
    except BaseException as failed:
        await budget.give(taken)
        if isinstance(failed, ExceptionGroup):
            raise failed.exceptions[0] from None
        raise
    return [task.result() for task in tasks]


async def _bytes_of(url: str, param: str, fetcher: UrlFetcher) -> tuple[bytes, str | None]:
    if url.startswith("data:"):
        return data_url_bytes(url, param)
    if url.startswith(("http://", "https://")):
        try:
            return await fetcher.fetch(url)
        except FetchError as exc:
            raise fetch_error(param, url, exc) from None
    raise InvalidRequestError(
        f"Invalid image URL in '{param}': expected an http(s) URL or a base64 data URL (data:image/png;base64,...).",
        param=param,
        code="invalid_image_url",
    )


def data_url_bytes(url: str, param: str) -> tuple[bytes, str | None]:
    match = DATA_URL.match(url)
    if match is None or not match.group("b64"):
        raise _invalid(param, "it is not a base64 data URL (expected 'data:image/png;base64,...')")
    kind = (match.group("type") or "").lower() or None
    payload = url[match.end() :]
    try:
        return decode_payload(payload, MAX_IMAGE_BYTES), kind
    except PayloadError as exc:
        if exc.kind == "too_large":
            raise _too_large(param) from None
        raise _invalid(param, "the image is empty" if exc.kind == "empty" else "its data is not valid base64") from None


def image_pixels(data: bytes, param: str, declared: str | None = None) -> int:
    """The pixels an image will decode to, from its header (blocking, but cheap)."""
    if len(data) > MAX_IMAGE_BYTES:
        raise _too_large(param)
    try:
        with PIL.Image.open(io.BytesIO(data), formats=FORMATS) as image:
            width, height = image.width, image.height
    except (PIL.UnidentifiedImageError, PIL.Image.DecompressionBombError):
        raise _not_an_image(param, declared) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise _invalid(param, f"the image could not be decoded ({exc})") from None
    if width * height > MAX_IMAGE_PIXELS:
        raise _invalid(param, f"the image is {width}x{height} pixels, more than {MAX_IMAGE_PIXELS:,} in all")
    return width * height


def decode_image(data: bytes, param: str, detail: str = "auto", declared: str | None = None) -> Image:
    """Decode to RGB (blocking). ``declared``: the type the data URL or server gave."""
    if len(data) > MAX_IMAGE_BYTES:
        raise _too_large(param)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PIL.Image.DecompressionBombWarning)
            with PIL.Image.open(io.BytesIO(data), formats=FORMATS) as image:
                if image.width * image.height > MAX_IMAGE_PIXELS:
                    raise _invalid(
                        param, f"the image is {image.width}x{image.height} pixels, more than {MAX_IMAGE_PIXELS:,} in all"
                    )
                image.seek(0)  # an animation's first frame
                rgb = _rgb(image)
    except (PIL.UnidentifiedImageError, PIL.Image.DecompressionBombError, PIL.Image.DecompressionBombWarning):
        raise _not_an_image(param, declared) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise _invalid(param, f"the image could not be decoded ({exc})") from None
    if detail == "low":
        rgb.thumbnail((LOW_DETAIL_SIDE, LOW_DETAIL_SIDE))
    return image_of(rgb)


def image_of(rgb: PIL.Image.Image) -> Image:
    """An RGB picture as the backend takes it, named by a hash of its pixels."""
    pixels = rgb.tobytes()
    digest = hashlib.sha256(f"{rgb.width}x{rgb.height}:".encode() + pixels).hexdigest()
    return Image(rgb.width, rgb.height, pixels, digest)


class ImagePlacer:
    """Puts images into the messages' text as the prompt builder's marker, and keeps them
    in prompt order: an ``image_url`` part takes the next image loaded for the parts; a
    PDF page without text brings its rendering."""

    def __init__(self, loaded: Sequence[Image], marker: str | None = None) -> None:
        self.marker = marker or f"<image:{secrets.token_hex(16)}>"
        self._loaded = iter(loaded)
        self.images: list[Image] = []
        self.params: list[str] = []

    def image_part(self, param: str) -> str:
        return self.page(param, next(self._loaded))

    def page(self, param: str, image: Image) -> str:
        self.images.append(image)
        self.params.append(param)
        return self.marker

    def prompt_images(self) -> PromptImages | None:
        return PromptImages(self.images, self.params, self.marker) if self.images else None


def _rgb(image: PIL.Image.Image) -> PIL.Image.Image:
    if image.mode == "RGB":
        return image.copy()
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = PIL.Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return PIL.Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _not_an_image(param: str, declared: str | None) -> InvalidRequestError:
    return InvalidRequestError(
        f"Invalid image in '{param}': the data is not a PNG, JPEG, WebP or GIF image"
        + (f" (it was declared {declared})" if declared else "")
        + ".",
        param=param,
        code="invalid_image_format",
    )


def _invalid(param: str, why: str) -> InvalidRequestError:
    return InvalidRequestError(f"Invalid image in '{param}': {why}.", param=param, code="invalid_image")


def _too_large(param: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"Invalid image in '{param}': the image is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB.",
        param=param,
        code="image_too_large",
    )

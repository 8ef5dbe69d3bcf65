"""Image parts without a model: decoding every accepted format from real files, the data
URL and pixel limits, and the URL fetcher's guards (addresses checked on every hop, size,
time and type caps) against a local HTTP server."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import time

import PIL.Image
import pytest

from chatport.protocol.errors import APIError, InvalidRequestError
from chatport.service.fetch import FetchError, FetchPolicy, UrlFetcher, is_public
from chatport.service.images import LOW_DETAIL_SIDE, data_url_bytes, decode_image
from tests.support.images import animated_gif, encode, image_host, picture, redirect, send

PARAM = "messages[0].content[1]"
EXPECTED = picture().tobytes()


@pytest.mark.parametrize(
    "fmt,options",
    [("PNG", {}), ("WEBP", {"lossless": True}), ("GIF", {}), ("PNG", {"optimize": True})],
)
def test_lossless_formats_decode_to_the_same_pixels_and_digest(fmt, options):
    reference = decode_image(encode(picture(), "PNG"), PARAM)
    image = decode_image(encode(picture(), fmt, **options), PARAM)
    assert (image.width, image.height) == (48, 32)
    assert image.rgb == EXPECTED
    assert image.digest == reference.digest  # the prefix cache sees one picture


def test_jpeg_decodes_to_nearly_the_same_pixels():
    image = decode_image(encode(picture(), "JPEG", quality=95), PARAM)
    assert (image.width, image.height) == (48, 32)
    mean_error = sum(abs(a - b) for a, b in zip(image.rgb, EXPECTED, strict=True)) / len(EXPECTED)
    assert mean_error < 8  # lossy (edges blur), but the same picture


def test_an_animated_gif_is_its_first_frame():
    assert decode_image(animated_gif(), PARAM).rgb == EXPECTED


def test_transparency_is_laid_over_white_and_grey_becomes_rgb():
    clear = PIL.Image.new("RGBA", (4, 4), (10, 20, 30, 0))
    assert set(decode_image(encode(clear, "PNG"), PARAM).rgb) == {255}
    grey = PIL.Image.new("L", (4, 4), 77)
    assert set(decode_image(encode(grey, "PNG"), PARAM).rgb) == {77}


def test_low_detail_fits_the_image_into_512_pixels():
    big = PIL.Image.new("RGB", (2048, 1024), (1, 2, 3))
    image = decode_image(encode(big, "PNG"), PARAM, detail="low")
    assert (image.width, image.height) == (LOW_DETAIL_SIDE, LOW_DETAIL_SIDE // 2)
    assert decode_image(encode(big, "PNG"), PARAM, detail="high").width == 2048


@pytest.mark.parametrize(
    "data,code",
    [
        (b"just some text, not an image", "invalid_image_format"),
        (encode(picture(), "BMP"), "invalid_image_format"),  # a real image, in a format OpenAI does not take
        (encode(picture(), "PNG")[:60], "invalid_image"),  # cut short
    ],
)
def test_undecodable_data_is_a_400_naming_the_part(data, code):
    with pytest.raises(InvalidRequestError) as caught:
        decode_image(data, PARAM)
    assert caught.value.param == PARAM and caught.value.code == code


def test_a_decompression_bomb_is_refused_from_its_header():
    # 8,000 x 8,000 pixels of one colour compress to a few kilobytes.
    bomb = encode(PIL.Image.new("L", (8000, 8000)), "PNG")
    assert len(bomb) < 200_000
    with pytest.raises(InvalidRequestError, match="pixels"):
        decode_image(bomb, PARAM)


@pytest.mark.parametrize(
    "url,why",
    [
        ("data:image/png,not-base64-flagged", "not a base64 data URL"),
        ("data:image/png;base64,@@@@", "not valid base64"),
        ("data:image/png;base64,", "empty"),
    ],
)
def test_bad_data_urls(url, why):
    with pytest.raises(InvalidRequestError, match=why) as caught:
        data_url_bytes(url, PARAM)
    assert caught.value.param == PARAM


@pytest.mark.parametrize(
    "address,public",
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # the cloud metadata service
        ("100.64.0.1", False),  # shared address space (carrier NAT)
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),  # loopback spelled as IPv6
        ("::ffff:169.254.169.254", False),
        # IPv6 forms that embed an IPv4 address are judged by it:
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of the metadata service
        ("64:ff9b::5db8:d822", True),  # NAT64 of a public address
        ("64:ff9b:1::808:808", False),  # NAT64 for local use: refused whatever it holds
        ("2002:7f00:1::1", False),  # 6to4 of 127.0.0.1
        ("2002:a00:1::1", False),  # 6to4 of 10.0.0.1
        ("2002:5db8:d822::1", True),  # 6to4 of a public address
        ("::7f00:1", False),  # IPv4-compatible 127.0.0.1
        ("::a9fe:a9fe", False),
        ("::ffff:0:7f00:1", False),  # IPv4-translated 127.0.0.1
        ("fec0::1", False),  # site-local
    ],
)
def test_which_addresses_are_public(address, public):
    assert is_public(ipaddress.ip_address(address)) is public


def fetch(fetcher: UrlFetcher, url: str) -> tuple[bytes, str | None]:
    return asyncio.run(fetcher.fetch(url))


def loopback_fetcher(**policy) -> UrlFetcher:
    # 127.0.0.1 stands for the public internet, every other address for private ones.
    return UrlFetcher(FetchPolicy(**policy), address_allowed=lambda a: str(a) == "127.0.0.1")


def test_a_fetch_returns_the_body_and_its_type():
    png = encode(picture(), "PNG")
    with image_host({"/a.png": lambda h: send(h, png)}) as host:
        assert fetch(loopback_fetcher(), host.url("/a.png")) == (png, "image/png")


def test_private_addresses_are_refused_before_connecting_and_allowed_when_asked():
    png = encode(picture(), "PNG")
    with image_host({"/a.png": lambda h: send(h, png)}) as host:
        with pytest.raises(FetchError, match=re.escape("127.0.0.1, a loopback, private")):
            fetch(UrlFetcher(), host.url("/a.png"))
        with pytest.raises(FetchError, match="'localhost' resolves to"):
            fetch(UrlFetcher(), host.url("/a.png", host="localhost"))
        assert host.hits == []
        assert fetch(UrlFetcher(FetchPolicy(allow_private=True)), host.url("/a.png"))[0] == png


def test_every_redirect_is_checked_again():
    png = encode(picture(), "PNG")
    with image_host(bind="0.0.0.0") as host:
        host.routes.update(
            {
                "/a.png": lambda h: send(h, png),
                "/hop": redirect("/a.png"),  # relative, to an allowed address
                "/away": redirect(host.url("/a.png", host="127.0.0.2")),  # to a "private" one
            }
        )
        assert fetch(loopback_fetcher(), host.url("/hop"))[0] == png
        with pytest.raises(FetchError, match=re.escape("127.0.0.2")):
            fetch(loopback_fetcher(), host.url("/away"))
        assert host.hits == ["/hop", "/a.png", "/away"]  # the private hop was never asked


def test_endless_redirects_stop():
    with image_host({"/loop": redirect("/loop")}) as host, pytest.raises(FetchError, match="more than 5 redirects"):
        fetch(loopback_fetcher(), host.url("/loop"))


def stream_without_length(size: int):
    def route(handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "image/png")
        handler.end_headers()
        for _ in range(size // 65536):
            handler.wfile.write(b"\0" * 65536)

    return route


def test_size_is_capped_by_the_declared_length_and_while_reading():
    with image_host() as host:
        host.routes["/declared"] = lambda h: send(h, b"\0" * 300_000)
        host.routes["/streamed"] = stream_without_length(1_000_000)
        with pytest.raises(FetchError, match="300000 bytes, more than the 200000-byte limit"):
            fetch(loopback_fetcher(max_bytes=200_000), host.url("/declared"))
        with pytest.raises(FetchError, match="more than the 200000-byte limit"):
            fetch(loopback_fetcher(max_bytes=200_000), host.url("/streamed"))


def test_a_slow_server_is_cut_at_the_time_limit():
    def slow(handler) -> None:
        time.sleep(3)
        send(handler, b"late")

    with image_host({"/slow": slow}) as host, pytest.raises(FetchError, match=re.escape("within 0.5 seconds")):
        fetch(loopback_fetcher(timeout=0.5), host.url("/slow"))


@pytest.mark.parametrize(
    "route,why",
    [
        (lambda h: send(h, b"<html></html>", "text/html"), "sent text/html, not an image"),
        (lambda h: send(h, b"gone", "text/plain", 410), "answered HTTP 410"),
    ],
)
def test_what_is_not_an_image_is_refused(route, why):
    with image_host({"/x": route}) as host, pytest.raises(FetchError, match=why):
        fetch(loopback_fetcher(), host.url("/x"))


def test_unreachable_and_malformed_urls():
    with image_host() as host:
        port = host.port
    with pytest.raises(FetchError, match="could not be reached"):
        fetch(loopback_fetcher(), f"http://127.0.0.1:{port}/gone.png")
    with pytest.raises(FetchError, match="could not be resolved"):
        fetch(loopback_fetcher(), "http://no-such-host.invalid/a.png")
    with pytest.raises(FetchError, match="only http, https"):
        fetch(loopback_fetcher(), "ftp://127.0.0.1/a.png")


def test_one_request_holds_at_most_100_images():
    from concurrent.futures import ThreadPoolExecutor

    from chatport.protocol.requests import ChatCompletionRequest
    from chatport.service.images import load_images
    from tests.support.images import data_url

    part = {"type": "image_url", "image_url": {"url": data_url(encode(picture(4, 4), "PNG"))}}
    with ThreadPoolExecutor(2) as pool:
        for count, refused in ((100, False), (101, True)):
            request = ChatCompletionRequest.model_validate(
                {"model": "m", "messages": [{"role": "user", "content": [part] * count}]}
            )
            if refused:
                with pytest.raises(InvalidRequestError, match="101 image parts; at most 100") as caught:
                    asyncio.run(load_images(request.messages, UrlFetcher(), pool))
                assert caught.value.code == "too_many_images"
            else:
                assert len(asyncio.run(load_images(request.messages, UrlFetcher(), pool))) == 100


async def test_decoded_pixels_are_shared_by_all_requests(monkeypatch):
    from chatport.service import images

    monkeypatch.setattr(images, "PIXEL_WAIT_SECONDS", 0.2)
    budget = images.PixelBudget(100)
    await budget.take(60)
    waiting = asyncio.ensure_future(budget.take(60))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # no room until the first gives some back
    await budget.give(60)
    await waiting
    assert budget.free == 40
    with pytest.raises(APIError) as caught:
        await budget.take(50)
    assert caught.value.status_code == 503 and caught.value.code == "server_overloaded"


def test_one_requests_pixels_are_capped_before_they_are_decoded():
    from concurrent.futures import ThreadPoolExecutor

    from chatport.protocol.requests import ChatCompletionRequest
    from chatport.service.images import MAX_REQUEST_PIXELS, PixelBudget, load_images
    from tests.support.images import data_url

    big = data_url(encode(PIL.Image.new("RGB", (6000, 6000), "red"), "PNG"))  # 36 Mpixel, a small file
    part = {"type": "image_url", "image_url": {"url": big}}
    request = ChatCompletionRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": [part] * 3}]})
    budget = PixelBudget()
    with ThreadPoolExecutor(1) as pool, pytest.raises(InvalidRequestError) as caught:
        asyncio.run(load_images(request.messages, UrlFetcher(), pool, budget))
    assert caught.value.code == "image_too_large" and f"{MAX_REQUEST_PIXELS:,}" in caught.value.message
    assert budget.free == PixelBudget().free  # what it took was given back

"""Image parts through the official SDKs, on SmolLM2 with the tiny random projector
(tests/support/mmproj.py): the seeds' examples unchanged but for the image address (a
local stand-in for example.com), image tokens counted, several images, a repeated image
found in the prefix cache, images while text streams run, every bad input a 400 naming
the part, and image URLs that point into the server's own network refused unless the
server allows them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import openai
import pytest

from tests.conftest import MODEL, start_server, stop_server
from tests.e2e.test_cancellation import reused
from tests.e2e.test_node_sdk import run_node_script
from tests.support.images import animated_gif, data_url, encode, image_host, picture, send
from tests.support.mmproj import IMAGE_TOKENS, tiny_mmproj
from tests.support.pdf import pdf_with_scan
from tests.support.streams import stream_to_length

PNG = encode(picture(), "PNG")
JPEG = encode(picture(), "JPEG", quality=95)


@pytest.fixture(scope="module")
def mmproj(tmp_path_factory):
    return tiny_mmproj(str(tmp_path_factory.mktemp("mmproj") / "tiny-mmproj.gguf"))


@pytest.fixture(scope="module")
def host():
    with image_host(
        {
            "/image.jpg": lambda h: send(h, JPEG, "image/jpeg"),
            "/image.png": lambda h: send(h, PNG),
            "/other.png": lambda h: send(h, encode(picture(shift=2), "PNG")),
            "/page.html": lambda h: send(h, b"<html>hi</html>", "text/html"),
            "/fake.png": lambda h: send(h, b"not really a png", "image/png"),
        }
    ) as served:
        yield served


@pytest.fixture(scope="module")
def vision(mmproj, tmp_path_factory):
    """A server that sees images and may fetch from loopback (the stand-in for example.com),
    serving SmolLM2 under the seeds' model names too."""
    srv = start_server(
        str(tmp_path_factory.mktemp("vision")),
        "--mmproj",
        mmproj,
        "--allow-private-urls",
        "--alias",
        f"gpt-4-turbo={MODEL}",
        "--alias",
        f"gpt-4o={MODEL}",
    )
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module")
def guarded(mmproj, tmp_path_factory):
    """The same model with the default URL policy: no private addresses."""
    srv = start_server(str(tmp_path_factory.mktemp("guarded")), "--mmproj", mmproj)
    yield srv
    stop_server(srv)


def client_for(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.api, api_key="unused", max_retries=0, timeout=120)


def ask(client, content, **kwargs):
    return client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": content}], max_tokens=8, temperature=0, **kwargs
    )


def text(value: str) -> dict:
    return {"type": "text", "text": value}


def image(url: str, **extra) -> dict:
    return {"type": "image_url", "image_url": {"url": url, **extra}}


def test_the_python_seed_example(vision, host):
    # The seed's call as written, with example.com's image served from loopback.
    client = client_for(vision)
    response = client.chat.completions.create(
        model="gpt-4-turbo",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What's in this image?"},
                    {"type": "image_url", "image_url": {"url": host.url("/image.jpg")}},
                ],
            }
        ],
    )
    assert response.choices[0].message.content
    assert response.choices[0].finish_reason in ("stop", "length")


def test_image_tokens_count_in_the_prompt(vision):
    client = client_for(vision)
    without = ask(client, [text("What's in this image?")]).usage.prompt_tokens
    one = ask(client, [text("What's in this image?"), image(data_url(PNG))]).usage.prompt_tokens
    two = ask(
        client, [text("What's in this image?"), image(data_url(PNG)), image(data_url(JPEG, "image/jpeg"))]
    ).usage.prompt_tokens
    assert one - without >= IMAGE_TOKENS
    assert two - one >= IMAGE_TOKENS
    # The projector's wrapper text is the same around each image: the second costs what the first did.
    assert abs((two - one) - (one - without)) <= 2


def test_a_repeated_image_is_a_prefix_cache_hit_and_another_is_not(vision, host):
    client = client_for(vision)
    question = text("Describe it.")
    first = ask(client, [image(host.url("/image.png")), question])
    # The same pixels as lossless WebP, by data URL: one picture, so one cache entry.
    webp = data_url(encode(picture(), "WEBP", lossless=True), "image/webp")
    again, cached = reused(vision, lambda: ask(client, [image(webp), question]))
    assert again.usage.prompt_tokens == first.usage.prompt_tokens
    assert cached == again.usage.prompt_tokens - 1
    other, cached = reused(vision, lambda: ask(client, [image(host.url("/other.png")), question]))
    assert other.usage.prompt_tokens == first.usage.prompt_tokens
    assert cached < other.usage.prompt_tokens - IMAGE_TOKENS


def test_every_format_and_an_animations_first_frame(vision):
    client = client_for(vision)
    question = text("Which colours?")
    reference = ask(client, [image(data_url(PNG)), question])
    gif, cached = reused(vision, lambda: ask(client, [image(data_url(animated_gif(), "image/gif")), question]))
    assert cached == gif.usage.prompt_tokens - 1  # the PNG's pixels
    jpeg = ask(client, [image(data_url(JPEG, "image/jpeg")), question])
    assert jpeg.usage.prompt_tokens == reference.usage.prompt_tokens
    for detail in ("low", "high", "auto"):
        assert ask(client, [image(data_url(PNG), detail=detail), question]).usage.prompt_tokens == reference.usage.prompt_tokens


def test_images_in_earlier_turns_and_streaming(vision):
    client = client_for(vision)
    messages = [
        {"role": "user", "content": [text("Look."), image(data_url(PNG))]},
        {"role": "assistant", "content": "I see blocks of colour."},
        {"role": "user", "content": [text("And now?"), image(data_url(JPEG, "image/jpeg"))]},
    ]
    stream = client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=8, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[-1].usage.prompt_tokens > 2 * IMAGE_TOKENS
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


async def test_images_while_text_streams_run(vision, eog_bias):
    client = openai.AsyncOpenAI(base_url=vision.api, api_key="unused", max_retries=0, timeout=120)

    async def look(n: int):
        picture_n = encode(picture(shift=n % 4, width=40 + n), "PNG")
        return await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": [text("What is this?"), image(data_url(picture_n))]}], max_tokens=4
        )

    streams = [asyncio.create_task(stream_to_length(client, 48, eog_bias)) for _ in range(8)]
    await asyncio.sleep(0.5)
    looks = await asyncio.gather(*(look(n) for n in range(6)))
    counts = await asyncio.gather(*streams)
    assert all(r.usage.prompt_tokens > IMAGE_TOKENS for r in looks)
    assert counts == [(48, "length")] * 8  # every stream ran to its length, none cut or failed


@pytest.mark.parametrize(
    "url,code,says",
    [
        ("data:image/png;base64,@@@", "invalid_image", "not valid base64"),
        ("data:image/png;base64," + "QUFB", "invalid_image_format", "not a PNG, JPEG, WebP or GIF"),
        (data_url(encode(picture(), "BMP"), "image/bmp"), "invalid_image_format", "not a PNG, JPEG, WebP or GIF"),
        ("ftp://example.com/a.png", "invalid_image_url", "expected an http(s) URL"),
        ("/page.html", "invalid_image_url", "sent text/html, not an image"),
        ("/missing.png", "invalid_image_url", "answered HTTP 404"),
        ("/fake.png", "invalid_image_format", "not a PNG, JPEG, WebP or GIF"),
        ("http://no-such-host.invalid/a.png", "invalid_image_url", "could not be resolved"),
    ],
)
def test_bad_images_are_400s_naming_the_part(vision, host, url, code, says):
    client = client_for(vision)
    url = host.url(url) if url.startswith("/") else url
    with pytest.raises(openai.BadRequestError) as caught:
        ask(client, [text("What's this?"), image(url)])
    error = caught.value.body
    assert (error["param"], error["code"]) == ("messages[0].content[1]", code)
    assert says in error["message"]
    assert ask(client, [text("Still there?")]).choices[0].message.content is not None


@pytest.mark.parametrize(
    "target",
    [
        "127.0.0.1:{port}/image.png",
        "localhost:{port}/image.png",
        "169.254.169.254/latest/meta-data/",
        "10.0.0.1/a.png",
        "[::1]:{port}/image.png",
    ],
)
def test_urls_into_the_servers_own_network_are_refused(guarded, host, target):
    before = len(host.hits)
    with pytest.raises(openai.BadRequestError) as caught:
        ask(client_for(guarded), [text("What's this?"), image("http://" + target.format(port=host.port))])
    error = caught.value.body
    assert (error["param"], error["code"]) == ("messages[0].content[1]", "invalid_image_url")
    assert "loopback, private, link-local or reserved address" in error["message"]
    assert "--allow-private-urls" in error["message"]
    assert len(host.hits) == before  # nothing was asked of the local server


def test_a_scanned_pdf_page_reaches_a_vision_model_as_an_image(vision, client):
    pdf = pdf_with_scan(["Invoice 7 of the series."], picture(), ["Total: 42 euros."])
    part = {"type": "file", "file": {"filename": "scan.pdf", "file_data": data_url(pdf, "application/pdf")}}
    seen = ask(client_for(vision), [text("What is the total?"), part])
    # The server without a projector reads the same file as text, the scan as "(no text on this page)".
    read = ask(client, [text("What is the total?"), part])
    assert seen.usage.prompt_tokens - read.usage.prompt_tokens >= IMAGE_TOKENS


def test_a_model_without_a_projector_refuses_images_as_before(client):
    with pytest.raises(openai.BadRequestError) as caught:
        ask(client, [text("What's this?"), image(data_url(PNG))])
    assert caught.value.body["code"] == "unsupported_content_type"
    assert caught.value.body["param"] == "messages[0].content[1]"


@pytest.mark.node
def test_the_typescript_seed_examples(vision, host):
    env = {
        "CHATPORT_BASE_URL": vision.api,
        "CHATPORT_IMAGE_1": host.url("/image.jpg"),
        "CHATPORT_IMAGE_2": host.url("/other.png"),
    }
    report = run_node_script("vision_check.mjs", env)
    assert report["oneImage"]["content"] and report["oneImage"]["prompt_tokens"] > IMAGE_TOKENS
    assert report["twoImages"]["prompt_tokens"] > report["oneImage"]["prompt_tokens"] + IMAGE_TOKENS - 8
    assert report["badImage"] == {"status": 400, "param": "messages[0].content[1]", "code": "invalid_image_format"}


def test_a_projector_for_another_model_is_refused_at_load(tmp_path):
    wide = tiny_mmproj(str(tmp_path / "wide-mmproj.gguf"), text_width=1024)
    out = subprocess.run(
        [sys.executable, "-m", "chatport", "serve", "--mmproj", wide, "--port", "0", "--no-auth"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "300"},
    )
    assert out.returncode == 1
    assert "mismatch between text model (n_embd = 576) and mmproj (n_embd = 1024)" in out.stderr

"""Screenshots of the web UI for the README (docs/ui/*.png), taken in Debian's chromium.

    python scripts/ui_screenshots.py            # starts its own server on a free port

It starts chatport with a temporary store and prompt cache, fills a few stored completions,
drives each page as a user would, and saves what the browser shows.
"""

from __future__ import annotations

import os
import tempfile

from openai import OpenAI
from playwright.sync_api import sync_playwright

from chatport.bench.servers import start_chatport

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "ui")
MODEL = "smollm2-135m-instruct"


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = start_chatport(
            "--store", f"sqlite:///{tmp}/store.db", "--cache-dir", f"{tmp}/cache", log_path=f"{tmp}/server.log"
        )
        try:
            shoot(server.base_url)
        finally:
            server.stop()


def shoot(base: str) -> None:
    client = OpenAI(base_url=base + "/v1", api_key="unused")
    for topic, question in [
        ("geography", "What is the capital of France?"),
        ("cooking", "How do I boil an egg?"),
        ("geography", "Name a river in Africa."),
        ("science", "Why is the sky blue?"),
    ]:
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": question}],
            max_completion_tokens=60,
            temperature=0,
            store=True,
            metadata={"topic": topic, "app": "docs"},
        )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=os.environ.get("CHATPORT_CHROMIUM", "/usr/bin/chromium"), args=["--no-sandbox"]
        )
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.goto(base + "/")
        page.wait_for_selector("#model option", state="attached")
        page.locator(".msg.user textarea").fill("Write a Python function that reverses a string, with a short explanation.")
        page.fill("#max_completion_tokens", "160")
        page.fill("#temperature", "0")
        page.click("#run")
        page.wait_for_selector(".msg.assistant:not(.pending) .stats", timeout=120_000)
        page.screenshot(path=f"{OUT}/playground.png")

        page.click("#clear")
        page.click("#example-tools")
        page.select_option("#tool_choice", "function:get_weather")
        page.locator(".msg.user textarea").fill("What is the weather in Lisbon?")
        page.click("#run")
        page.wait_for_selector(".msg.tool textarea", timeout=120_000)
        page.locator(".msg.tool textarea").fill('{"temperature_c": 21, "sky": "sunny"}')
        page.screenshot(path=f"{OUT}/tools.png")

        page.click("#view-code")
        page.wait_for_selector("#code-dialog[open]")
        page.screenshot(path=f"{OUT}/view-code.png")
        page.click("#close-code")

        page.click('nav a[data-view="stored"]')
        page.wait_for_selector("#stored-table tbody tr")
        page.screenshot(path=f"{OUT}/stored.png")
        page.locator("#stored-table tbody tr").first.click()
        page.wait_for_selector(".stored-detail .stored-message")
        page.screenshot(path=f"{OUT}/stored-detail.png", full_page=True)

        page.goto(base + "/#/playground")
        page.click("#clear")
        page.locator(".msg.user textarea").fill("Write a very long story about a dragon.")
        page.fill("#tools", "")
        page.fill("#max_completion_tokens", "1500")
        page.click("#run")
        status = context.new_page()
        status.set_viewport_size({"width": 1400, "height": 760})
        status.goto(base + "/#/status")
        status.wait_for_timeout(4000)
        status.screenshot(path=f"{OUT}/status.png")
        page.click("#stop")
        browser.close()


if __name__ == "__main__":
    main()

"""The web UI in a real browser: Debian's chromium driven by Playwright, against the real
server. The playground streams, stops (and the status page sees the slot freed), calls a
tool and continues, answers against a JSON schema, shows logprobs, takes attachments and
plays spoken answers; "View code" gives Python, TypeScript and curl that run as they are;
stored completions are listed, filtered, paged, edited and deleted, and one project's key
sees nothing of another's. Every request the pages make goes to the server itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import jsonschema
import pytest
from openai import NotFoundError, OpenAI

from tests.conftest import MODEL, cli_key, start_server, stop_server

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("CHATPORT_CHROMIUM", "/usr/bin/chromium")
NODE_DIR = os.path.join(os.path.dirname(__file__), "..", "node")
STORY = "Write a very long story about a dragon."  # greedy SmolLM2 writes until max tokens


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: the browser tests need Debian's chromium (apt-get install -y chromium)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


class Tab:
    """A page in its own browser context (its own session storage), which records script
    errors and any request that leaves the server."""

    def __init__(self, browser, base_url: str) -> None:
        self.base = base_url
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.posts: list[dict] = []
        self.responses_posts: list[dict] = []  # to /v1/responses
        self.page = self.open()

    def open(self):
        page = self.context.new_page()
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("request", self._saw)
        return page

    def _saw(self, request) -> None:
        url = request.url
        if not (url.startswith(self.base + "/") or url.startswith(("data:", "blob:"))):
            self.foreign.append(url)
        if request.method == "POST" and url == self.base + "/v1/chat/completions":
            self.posts.append(json.loads(request.post_data))
        if request.method == "POST" and url == self.base + "/v1/responses":
            self.responses_posts.append(json.loads(request.post_data))

    def close(self) -> None:
        self.context.close()
        assert not self.errors, f"script errors: {self.errors}"
        assert not self.foreign, f"requests that left the server: {self.foreign}"


@pytest.fixture
def tabs(browser) -> Iterator:
    opened: list[Tab] = []

    def open_tab(server) -> Tab:
        tab = Tab(browser, server.base_url)
        opened.append(tab)
        return tab

    yield open_tab
    for tab in opened:
        tab.close()


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    """A server whose store holds keys of two projects: (server, alpha's key, beta's key)."""
    tmp = str(tmp_path_factory.mktemp("ui"))
    store = f"sqlite:///{tmp}/ui.db"
    alpha, _ = cli_key(store, "alpha")
    beta, _ = cli_key(store, "beta")
    srv = start_server(tmp, "--store", store)
    yield srv, alpha, beta
    stop_server(srv)


def enter_key(page, key: str) -> None:
    page.wait_for_selector("#key-dialog[open]")
    page.fill("#key-input", key)
    page.click("#key-save")
    page.wait_for_selector("#key-dialog", state="hidden")


def playground(tab: Tab, key: str | None = None):
    page = tab.page
    page.goto(tab.base + "/")
    if key is not None:
        enter_key(page, key)
    page.wait_for_selector("#model option", state="attached")
    return page


def ask(page, text: str, **fields: str) -> None:
    for name, value in fields.items():
        page.fill(f"#{name}", value)
    page.locator(".msg.user textarea").last.fill(text)
    page.click("#run")


def answered(page, before: int = 0):
    """The newest finished answer, once there are more than ``before`` and none is running."""
    page.wait_for_function(
        "n => document.querySelectorAll('.msg.assistant:not(.pending)').length > n && !document.querySelector('.msg.pending')",
        arg=before,
        timeout=120_000,
    )
    return page.locator(".msg.assistant:not(.pending)").last


# --- the playground ---------------------------------------------------------------------


def test_a_prompt_streams_in_with_its_figures(server, tabs):
    tab = tabs(server)
    # Seen from inside the page: text was on screen while the answer was still running.
    tab.context.add_init_script(
        "window.__partial = false; new MutationObserver(() => {"
        " const el = document.querySelector('.msg.pending .md');"
        " if (el && el.textContent.trim() && !document.querySelector('#stop').disabled) window.__partial = true;"
        "}).observe(document, {subtree: true, childList: true, characterData: true});"
    )
    page = playground(tab)
    ask(page, STORY, temperature="0", max_completion_tokens="300")
    answer = answered(page)
    assert page.evaluate("window.__partial") is True
    assert answer.locator(".md").inner_text().startswith("Once upon a time")
    stats = answer.locator(".stats").inner_text()
    assert "completion tokens" in stats and "300 completion tokens" in stats, stats
    assert "time to first token" in stats and "tokens/s" in stats
    assert answer.locator(".finish").inner_text() == "finish_reason: length"
    body = tab.posts[-1]
    assert body["stream"] is True and body["max_completion_tokens"] == 300 and body["temperature"] == 0
    assert body["messages"] == [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": STORY},
    ]


def test_stop_cancels_and_the_status_page_sees_the_slot_freed(server, tabs):
    tab = tabs(server)
    page = playground(tab)
    status = tab.open()
    status.goto(tab.base + "/#/status")
    card = status.locator(f'.model-card[data-model="{MODEL}"]')
    card.wait_for()
    assert "2048 tokens" in card.locator(".settings-table").inner_text()  # the server's --ctx-size
    ask(page, STORY, temperature="0", max_completion_tokens="1800")
    page.wait_for_function("() => (document.querySelector('.msg.pending .md')?.textContent || '').length > 20")
    status.wait_for_function(
        "m => document.querySelector(`.model-card[data-model='${m}'] .running .value`)?.textContent === '1'", arg=MODEL
    )
    page.click("#stop")
    status.wait_for_function(
        "m => document.querySelector(`.model-card[data-model='${m}'] .running .value`)?.textContent === '0'", arg=MODEL
    )
    answer = answered(page)
    assert "stopped" in answer.locator(".stats").inner_text()
    assert int(card.locator(".generated .value").inner_text()) > 0
    assert card.locator(".ttft .value").inner_text() != "–"


def test_a_tool_call_shows_as_a_card_and_the_conversation_goes_on(server, tabs):
    tab = tabs(server)
    page = playground(tab)
    page.click("#example-tools")
    page.select_option("#tool_choice", "function:get_weather")
    ask(page, "What is the weather in Paris?", max_completion_tokens="60")
    answer = answered(page)
    assert answer.locator(".tool-name").inner_text() == "get_weather"
    arguments = json.loads(answer.locator(".tool-args").inner_text())
    assert isinstance(arguments["city"], str)
    page.locator(".msg.tool textarea").fill('{"temperature_c": 18, "sky": "clear"}')
    page.select_option("#tool_choice", "none")
    page.click("#run")
    final = answered(page, before=1)
    assert final.locator(".md").inner_text().strip()
    sent = tab.posts[-1]["messages"]
    call = tab.posts[-1]["messages"][-2]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather" and json.loads(call["function"]["arguments"]) == arguments
    assert sent[-1] == {"role": "tool", "tool_call_id": call["id"], "content": '{"temperature_c": 18, "sky": "clear"}'}
    assert tab.posts[-1]["tool_choice"] == "none"


def test_structured_output_follows_the_schema(server, tabs):
    tab = tabs(server)
    page = playground(tab)
    page.select_option("#response_format", "json_schema")
    schema = json.loads(page.input_value("#schema"))
    ask(page, "Name a city in Japan.", max_completion_tokens="80")
    answer = answered(page)
    value = json.loads(answer.locator(".md pre code").inner_text())
    jsonschema.validate(value, schema["schema"])
    assert tab.posts[-1]["response_format"] == {"type": "json_schema", "json_schema": schema}
    # A schema that is not JSON is named, and nothing is sent.
    page.fill("#schema", '{"name": "city", "schema": {')
    assert "Not valid JSON" in page.inner_text("#schema-error")
    sent = len(tab.posts)
    ask(page, "Another one.")
    assert page.inner_text("#error").startswith("schema: Not valid JSON")
    assert len(tab.posts) == sent


def test_invalid_tools_are_named_and_a_server_error_is_shown(server, tabs):
    tab = tabs(server)
    page = playground(tab)
    page.fill("#tools", '[{"type": "function", "function": {"name": "bad name"}}]')
    assert "tools[0].function.name" in page.inner_text("#tools-error")
    page.fill("#tools", "")
    # The server's own error, naming its parameter: top_p out of range.
    ask(page, "Hello", top_p="3")
    page.wait_for_selector("#error:not([hidden])")
    assert page.inner_text("#error").startswith("top_p:")


def test_hovering_a_token_shows_its_alternatives(server, tabs):
    tab = tabs(server)
    page = playground(tab)
    page.check("#logprobs")
    page.fill("#top_logprobs", "3")
    ask(page, "Say hello.", max_completion_tokens="8", temperature="0")
    answer = answered(page)
    tokens = answer.locator(".tokens .tok")
    completion_tokens = int(answer.locator(".stats").inner_text().split(" completion tokens")[0].rsplit(" ", 1)[1])
    assert tokens.count() == completion_tokens > 0
    tokens.first.hover()
    page.wait_for_selector("#tooltip:not([hidden])")
    rows = page.locator("#tooltip tr")
    assert rows.count() == 3
    assert page.locator("#tooltip tr.chosen").count() == 1  # greedy: the pick is among the top 3
    assert tab.posts[-1]["logprobs"] is True and tab.posts[-1]["top_logprobs"] == 3


def test_an_attached_file_goes_with_the_message(server, tabs, tmp_path):
    tab = tabs(server)
    page = playground(tab)
    note = tmp_path / "note.txt"
    note.write_text("The secret code is 4417.\n")
    page.locator(".msg.user .attach-input").last.set_input_files(str(note))
    page.wait_for_selector(".attachment")
    assert "note.txt" in page.inner_text(".attachment")
    ask(page, "What is the secret code?", max_completion_tokens="20", temperature="0")
    answer = answered(page)
    part = tab.posts[-1]["messages"][-1]["content"][1]
    assert part["type"] == "file" and part["file"]["filename"] == "note.txt"
    assert part["file"]["file_data"].startswith("data:text/plain;base64,")
    prompt_tokens = int(answer.locator(".stats").inner_text().split(" prompt tokens")[0])
    assert prompt_tokens > 30  # the file's text is in the prompt


def test_a_spoken_answer_plays_in_the_page(server, tabs):
    tab = tabs(server)
    page = playground(tab)
    page.wait_for_selector("#audio", state="visible")
    page.check("#audio")
    page.select_option("#voice", "coral")
    ask(page, "Say hello to the world in one sentence.", max_completion_tokens="30", temperature="0")
    answer = answered(page)
    audio = answer.locator("audio.spoken")
    assert audio.get_attribute("src").startswith("blob:")
    duration = audio.evaluate(
        "a => new Promise(ok => a.readyState >= 1 ? ok(a.duration) : a.addEventListener('loadedmetadata', () => ok(a.duration)))"
    )
    assert duration > 0.3
    assert tab.posts[-1]["audio"] == {"voice": "coral", "format": "pcm16"}
    assert answer.locator(".md").inner_text().strip()  # the transcript


# --- "View code" ------------------------------------------------------------------------


def test_view_code_gives_programs_that_run(keyed, tabs, tmp_path):
    server, alpha, _ = keyed
    tab = tabs(server)
    page = playground(tab, alpha)
    page.fill("#seed", "7")
    page.locator(".msg.user textarea").last.fill("Name three colors.")
    page.fill("#max_completion_tokens", "12")
    page.click("#view-code")
    page.wait_for_selector("#code-dialog[open]")
    python = page.inner_text("#code")
    assert alpha not in python  # the key stays in the tab
    page.click('.tab[data-lang="typescript"]')
    typescript = page.inner_text("#code")
    page.click('.tab[data-lang="curl"]')
    curl = page.inner_text("#code")
    page.click("#close-code")
    env = {**os.environ, "OPENAI_API_KEY": alpha}

    script = tmp_path / "snippet.py"
    script.write_text(python)
    ran = subprocess.run([sys.executable, str(script)], check=False, capture_output=True, text=True, env=env, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("ChatCompletionMessage(content=")

    module = os.path.join(NODE_DIR, f"view-code-{os.getpid()}.mjs")  # beside its node_modules
    with open(module, "w") as f:
        f.write(typescript)
    try:
        ran = subprocess.run(["node", module], check=False, capture_output=True, text=True, env=env, timeout=120)
    finally:
        os.remove(module)
    assert ran.returncode == 0, ran.stderr
    assert "role: 'assistant'" in ran.stdout

    ran = subprocess.run(["bash", "-c", curl], check=False, capture_output=True, text=True, env=env, timeout=120)
    assert ran.returncode == 0, ran.stderr
    completion = json.loads(ran.stdout)
    assert completion["object"] == "chat.completion" and completion["usage"]["completion_tokens"] <= 12


def test_the_playground_speaks_the_responses_api_too(keyed, tabs, tmp_path):
    server, alpha, _ = keyed
    tab = tabs(server)
    page = playground(tab, alpha)
    page.select_option("#api", "responses")
    assert page.is_disabled("#n") and page.is_disabled("#seed")
    ask(page, "Name three colors.", temperature="0", max_completion_tokens="40")
    answer = answered(page)
    assert answer.locator(".md").inner_text().strip()
    assert "completion tokens" in answer.locator(".stats").inner_text()
    sent = tab.responses_posts[-1]
    assert sent["stream"] is True and sent["store"] is False and sent["max_output_tokens"] == 40
    assert sent["instructions"] == "You are a helpful assistant."
    assert sent["input"] == [{"role": "user", "content": "Name three colors."}]
    assert not tab.posts, "nothing went to Chat Completions"

    # A tool call and its result, as Responses items.
    page.click("#example-tools")
    page.select_option("#tool_choice", "function:get_weather")
    ask(page, "What is the weather in Paris?")
    called = answered(page, before=1)
    assert called.locator(".tool-name").inner_text() == "get_weather"
    page.locator(".msg.tool textarea").fill('{"temperature_c": 18}')
    page.select_option("#tool_choice", "none")
    page.click("#run")
    assert answered(page, before=2).locator(".md").inner_text().strip()
    items = tab.responses_posts[-1]["input"]
    call, output = items[-2], items[-1]
    assert call["type"] == "function_call" and call["name"] == "get_weather"
    assert output == {"type": "function_call_output", "call_id": call["call_id"], "output": '{"temperature_c": 18}'}

    page.click("#view-code")
    page.wait_for_selector("#code-dialog[open]")
    page.click('.tab[data-lang="python"]')
    python = page.inner_text("#code")
    page.click('.tab[data-lang="curl"]')
    curl = page.inner_text("#code")
    page.click("#close-code")
    assert "client.responses.create(" in python and "/v1/responses" in curl
    env = {**os.environ, "OPENAI_API_KEY": alpha}
    script = tmp_path / "responses.py"
    script.write_text(python)
    ran = subprocess.run([sys.executable, str(script)], check=False, capture_output=True, text=True, env=env, timeout=120)
    assert ran.returncode == 0, ran.stderr
    ran = subprocess.run(["bash", "-c", curl], check=False, capture_output=True, text=True, env=env, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["object"] == "response"


# --- the API key ----------------------------------------------------------------------


def test_the_key_is_asked_for_checked_and_kept_in_the_tab_only(keyed, tabs):
    server, alpha, _ = keyed
    tab = tabs(server)
    page = tab.page
    page.goto(tab.base + "/")
    page.wait_for_selector("#key-dialog[open]")
    page.fill("#key-input", "sk-wrong")
    page.click("#key-save")
    # The page may already show why it asks (no key yet): wait for the answer about this one.
    page.wait_for_selector("#key-error:has-text('Incorrect API key')")
    page.fill("#key-input", alpha)
    page.click("#key-save")
    page.wait_for_selector("#key-dialog", state="hidden")
    assert page.evaluate("sessionStorage.getItem('chatport.apiKey')") == alpha
    assert page.evaluate("localStorage.length") == 0
    assert alpha not in page.url
    page.reload()
    page.wait_for_selector("#model option", state="attached")
    assert page.locator("#key-dialog[open]").count() == 0  # the same tab keeps it
    other = tabs(server).page
    other.goto(tab.base + "/")
    other.wait_for_selector("#key-dialog[open]")  # another tab does not have it
    assert alpha not in server.log()


def test_ui_responses_carry_a_strict_policy_and_helpers_want_a_key(keyed):
    server, alpha, _ = keyed
    page = httpx.get(server.base_url + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    for rule in ("default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"):
        assert rule in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert httpx.get(server.base_url + "/ui/static/app.js").headers["content-type"].startswith("text/javascript")
    missing = httpx.get(server.base_url + "/ui/static/secrets.py")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert httpx.get(server.base_url + "/ui/static/..%2Fmarkdown.py").status_code == 404
    assert httpx.get(server.base_url + "/ui/status").status_code == 401
    assert httpx.post(server.base_url + "/ui/markdown", json={"text": "hi"}).status_code == 401
    auth = {"Authorization": f"Bearer {alpha}"}
    rendered = httpx.post(server.base_url + "/ui/markdown", json={"text": "**hi** <b>x</b>"}, headers=auth).json()
    assert rendered == {"html": "<p><strong>hi</strong> &lt;b&gt;x&lt;/b&gt;</p>\n"}
    wrong = httpx.post(server.base_url + "/ui/markdown", json={"text": 3}, headers=auth)
    assert wrong.status_code == 400 and wrong.json()["error"]["param"] == "text"


def test_no_ui_serves_the_api_only(tmp_path):
    srv = start_server(str(tmp_path), "--no-ui")
    try:
        assert httpx.get(srv.base_url + "/").status_code == 404
        assert httpx.get(srv.base_url + "/ui/static/app.js").status_code == 404
        assert httpx.get(srv.api + "/models").status_code == 200
    finally:
        stop_server(srv)


# --- stored completions ----------------------------------------------------------------


def _stored(server, key: str, n: int, metadata: dict[str, str]) -> list[str]:
    client = OpenAI(base_url=server.api, api_key=key, max_retries=0)
    ids = []
    for i in range(n):
        done = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": f"Say the number {i}."}],
            max_completion_tokens=3,
            store=True,
            metadata={**metadata, "i": str(i)},
        )
        ids.append(done.id)
    return ids


def _listed(page) -> list[str]:
    page.wait_for_function("() => document.querySelector('#stored-table tbody tr') || !document.querySelector('.empty[hidden]')")
    return page.locator("#stored-table tbody tr.completion").evaluate_all("rows => rows.map(r => r.dataset.id)")


def _apply(page) -> None:
    with page.expect_response(lambda r: "/v1/chat/completions?" in r.url):
        page.click("#apply-filters")


def test_stored_completions_are_listed_filtered_paged_edited_and_deleted(keyed, tabs):
    server, alpha, _ = keyed
    batch = _stored(server, alpha, 23, {"batch": "ui"})
    others = _stored(server, alpha, 2, {"batch": "other"})
    tab = tabs(server)
    page = playground(tab, alpha)
    with page.expect_response(lambda r: "/v1/chat/completions?" in r.url):
        page.click('nav a[data-view="stored"]')
    first_page = _listed(page)
    assert len(first_page) == 20
    assert first_page[:2] == [others[1], others[0]]  # newest first
    assert first_page[2:] == batch[::-1][:18]
    with page.expect_response(lambda r: "after=" in r.url):
        page.click("#older")
    assert _listed(page) == batch[::-1][18:]
    assert page.is_disabled("#older")
    with page.expect_response(lambda r: "/v1/chat/completions?" in r.url):
        page.click("#newer")
    assert _listed(page) == first_page

    page.fill(".filter-row .meta-key", "batch")
    page.fill(".filter-row .meta-value", "other")
    _apply(page)
    assert _listed(page) == others[::-1]
    page.select_option("#filter-model", MODEL)
    _apply(page)
    assert _listed(page) == others[::-1]
    page.select_option("#filter-model", "")
    page.fill(".filter-row .meta-value", "nobody")
    _apply(page)
    assert _listed(page) == []
    assert page.is_visible(".empty")

    # One completion's page: its messages, answer, usage and metadata.
    page.fill(".filter-row .meta-value", "other")
    _apply(page)
    page.click(f'tr.completion[data-id="{others[0]}"]')
    page.wait_for_selector(".stored-detail .stored-message")
    assert page.inner_text(".stored-message .pre") == "Say the number 0."
    client = OpenAI(base_url=server.api, api_key=alpha, max_retries=0)
    stored = client.chat.completions.retrieve(others[0])
    # The answer is rendered as Markdown (a sampled "1. Number" shows as a list item reading
    # "Number"), so the words shown are compared with the raw content's, in order.
    shown = " ".join(page.inner_text(".stored-answer .md").split())
    raw = " ".join((stored.choices[0].message.content or "").split())
    assert shown in raw and bool(shown) == bool(raw)
    assert str(stored.usage.total_tokens) in page.inner_text("table.usage")
    keys = page.locator(".meta-row .meta-key").evaluate_all("inputs => inputs.map(i => i.value)")
    assert sorted(keys) == ["batch", "i"]

    page.locator(".meta-row").nth(keys.index("i")).locator("button").click()
    page.locator(".meta-row .meta-value").first.fill("edited")
    page.click("#meta-add")
    page.locator(".meta-row .meta-key").last.fill("reviewed")
    page.locator(".meta-row .meta-value").last.fill("yes")
    page.click("#meta-save")
    page.wait_for_function("() => document.querySelector('#meta-status').textContent === 'saved'")
    assert client.chat.completions.retrieve(others[0]).metadata == {"batch": "edited", "reviewed": "yes"}

    page.click("#delete")
    page.wait_for_selector("#delete-dialog[open]")
    page.click("#cancel-delete")
    assert client.chat.completions.retrieve(others[0]).id == others[0]  # cancelled: still there
    page.click("#delete")
    with page.expect_response(lambda r: r.request.method == "DELETE"):
        page.click("#confirm-delete")
    page.wait_for_selector(".stored-list", state="visible")
    with pytest.raises(NotFoundError):
        client.chat.completions.retrieve(others[0])
    assert others[0] not in _listed(page)


def test_another_projects_key_sees_none_of_them(keyed, tabs):
    server, alpha, beta = keyed
    mine = _stored(server, alpha, 1, {"owner": "alpha"})[0]
    tab = tabs(server)
    page = playground(tab, beta)
    with page.expect_response(lambda r: "/v1/chat/completions?" in r.url):
        page.click('nav a[data-view="stored"]')
    assert _listed(page) == []
    assert page.is_visible(".empty")
    page.goto(f"{tab.base}/#/stored/{mine}")
    page.wait_for_selector(".stored-detail .error")
    assert mine in page.inner_text(".stored-detail .error")  # "No chat completion found with id ..."


# --- web search -------------------------------------------------------------------------


def test_a_searched_answer_shows_its_sources_as_numbered_links(tmp_path_factory, tabs):
    results = [
        {
            "title": "Paris - Wikipedia",
            "url": "https://en.wikipedia.org/wiki/Paris",
            "snippet": "Paris is the capital of France.",
        },
        {"title": "France", "url": "https://example.org/france", "snippet": "France is in Europe."},
    ]
    tmp = tmp_path_factory.mktemp("ui-search")
    (tmp / "results.json").write_text(json.dumps(results))
    srv = start_server(str(tmp), "--web-search", f"file:{tmp / 'results.json'}")
    try:
        tab = tabs(srv)
        page = playground(tab)
        page.wait_for_selector("#web_search", state="visible")
        page.check("#web_search")
        page.select_option("#search_context_size", "low")
        ask(page, "What is the capital of France?", temperature="0", max_completion_tokens="40")
        answer = answered(page)
        links = answer.locator(".sources li a")
        hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
        assert hrefs and set(hrefs) <= {r["url"] for r in results}
        assert all(links.nth(i).get_attribute("rel") == "noopener noreferrer" for i in range(links.count()))
        assert tab.posts[-1]["web_search_options"] == {"search_context_size": "low"}
    finally:
        stop_server(srv)


def test_the_web_search_setting_is_hidden_without_a_search_engine(server, tabs):
    page = playground(tabs(server))
    assert page.locator("#web_search").is_hidden()
